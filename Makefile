# tinyfarm: `make nightly` sets everything up and runs the nightly on devices.yaml;
# `make test` sets everything up and runs the test suite. Both are idempotent.
# The tests of the PostgreSQL results store run against a real server: `make test` starts a
# project-local one (scripts/postgres.sh, in .farm/postgres) and stops it again afterwards.
.PHONY: setup nightly test bench clean postgres

DEVICES ?= devices.yaml

setup:
	@bash scripts/setup.sh

nightly: setup
	.venv/bin/farm --devices $(DEVICES) nightly

test: setup
	bash scripts/postgres.sh run .venv/bin/python -m pytest -ra --durations=25

# start the test PostgreSQL server and print its URL (export FARM_TEST_PG_URL=... to use it)
postgres: setup
	@bash scripts/postgres.sh start

clean:
	-bash scripts/postgres.sh stop
	rm -rf .farm

# tinyfarm: `make nightly` sets everything up and runs the nightly on devices.yaml;
# `make test` sets everything up and runs the test suite. Both are idempotent.
.PHONY: setup nightly test bench clean

DEVICES ?= devices.yaml

setup:
	@bash scripts/setup.sh

nightly: setup
	.venv/bin/farm --devices $(DEVICES) nightly

test: setup
	.venv/bin/python -m pytest -ra

clean:
	rm -rf .farm

"""A nightly in which a board's jobs did not run is incomplete, naming the board and why
(farm.judge.coverage): skipped throughout (busy, quarantined, no worker), or infra-error
records (its worker died, a job timed out); a board that ran — whatever its results — is not."""

from __future__ import annotations

from farm.judge.coverage import missing_boards, missing_sentence
from farm.store.records import ResultRecord
from farm.store.status import RunStatus, Status


def _record(device: str, variant: str, status: Status, message: str | None = None) -> ResultRecord:
    return ResultRecord(device=device, model="sine", variant=variant, status=status, message=message,
                        unit="instructions")


def test_a_board_every_test_of_which_was_skipped_is_missing_with_the_skip_reason():
    records = [_record("qemu-m4f", "int8", Status.OK)]
    missing = missing_boards(["qemu-m4f", "qemu-m3"], records, {"qemu-m3": "qemu-m3 is busy: leased by run 41"})
    assert missing == {"qemu-m3": "no measurement ran: qemu-m3 is busy: leased by run 41"}
    assert missing_sentence(missing) == "qemu-m3: no measurement ran: qemu-m3 is busy: leased by run 41"


def test_a_board_whose_worker_died_is_missing_with_the_infra_error():
    records = [_record("qemu-m3", "int8", Status.OK),
               _record("qemu-m3", "float32", Status.INFRA_ERROR, "worker tcp://127.0.0.1:4000 died while running "
                                                                 "qemu-m3 sine/float32")]
    missing = missing_boards(["qemu-m3"], records)
    assert list(missing) == ["qemu-m3"]
    assert missing["qemu-m3"].startswith("1 of its 2 measurements are infra-error: sine/float32: worker tcp://")


def test_boards_that_ran_are_not_missing_whatever_their_results():
    records = [_record("avr-mega2560", "float32", Status.DOES_NOT_FIT, "RAM: needs 12,608 bytes, has 8,192"),
               _record("qemu-m3", "int8", Status.HUNG, "qemu-m3 stopped answering")]
    assert missing_boards(["avr-mega2560", "qemu-m3"], records) == {}
    assert missing_boards([], records) == {}  # a -k that selects no measuring test plans no board


def test_an_incomplete_night_is_a_run_status_of_its_own():
    assert RunStatus("incomplete") is RunStatus.INCOMPLETE and RunStatus.INCOMPLETE != RunStatus.PASSED

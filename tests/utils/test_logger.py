"""Tests for fastreid.utils.logger."""

import logging
import uuid

import pytest

from fastreid.utils import logger as logger_mod
from fastreid.utils.logger import log_every_n, log_first_n, log_every_n_seconds, setup_logger


@pytest.fixture
def logger_name():
    """A unique logger name, whose handlers are closed and removed afterwards."""
    name = f"fastreid_test_{uuid.uuid4().hex[:8]}"
    yield name
    log = logging.getLogger(name)
    for handler in list(log.handlers):
        log.removeHandler(handler)
        if getattr(handler, logger_mod._HANDLER_KEY_ATTR, ("",))[0] == "file":
            handler.stream.close()


def _read(path):
    with open(path) as f:
        return f.read()


def test_handlers_not_duplicated(tmp_path, logger_name):
    log = setup_logger(str(tmp_path), name=logger_name)
    assert len(log.handlers) == 2  # stdout + file
    setup_logger(str(tmp_path), name=logger_name)
    setup_logger(str(tmp_path / "log.txt"), name=logger_name)  # same file, other spelling
    assert len(log.handlers) == 2
    log.info("only once")
    for h in log.handlers:
        h.flush()
    assert _read(tmp_path / "log.txt").count("only once") == 1


def test_file_output_is_plain(tmp_path, logger_name, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    log_file = tmp_path / "sub" / "train.log"
    log = setup_logger(str(log_file), name=logger_name, color=True)
    logging.getLogger(logger_name + ".child").warning("careful %d", 7)
    for h in log.handlers:
        h.flush()
    text = _read(log_file)
    assert "careful 7" in text
    assert logger_name + ".child WARNING" in text
    assert "\x1b[" not in text


def test_colorful_formatter_highlights_warnings(monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    fmt = logger_mod._ColorfulFormatter("%(name)s: %(message)s", "%H", root_name="fastreid", abbrev_name="fr")
    record = logging.LogRecord("fastreid.engine", logging.WARNING, __file__, 1, "hello", None, None)
    out = fmt.format(record)
    assert "\x1b[" in out and "WARNING" in out
    assert out.endswith("fr.engine: hello")
    assert record.name == "fastreid.engine"  # not mutated for other handlers


def test_rank_file_naming(tmp_path, logger_name):
    log = setup_logger(str(tmp_path), distributed_rank=2, name=logger_name)
    assert len(log.handlers) == 1  # no stdout on rank > 0
    log.info("rank two")
    log.handlers[0].flush()
    assert (tmp_path / "log.txt.rank2").exists()
    assert not (tmp_path / "log.txt").exists()
    assert "rank two" in _read(tmp_path / "log.txt.rank2")


def test_rate_limited_logging(caplog):
    name = "fastreid_test_rate"
    with caplog.at_level(logging.INFO, logger=name):
        for i in range(5):
            log_first_n(logging.INFO, f"first {i}", n=2, name=name)
        for i in range(7):
            log_every_n(logging.INFO, f"every {i}", n=3, name=name)
        for i in range(3):
            log_every_n_seconds(logging.INFO, f"seconds {i}", n=60, name=name)
        for _ in range(3):
            log_first_n(logging.INFO, "same text", n=1, name=name, key="message")
    messages = [r.getMessage() for r in caplog.records if r.name == name]
    assert messages == ["first 0", "first 1", "every 0", "every 3", "every 6", "seconds 0", "same text"]


def test_log_first_n_rejects_bad_key():
    with pytest.raises(ValueError):
        log_first_n(logging.INFO, "x", key="bogus")


def test_log_to_file_copies_records_only_inside_the_block(tmp_path, logger_name):
    from fastreid.utils.logger import log_to_file

    log = logging.getLogger(logger_name)
    log.setLevel(logging.WARNING)
    with log_to_file(str(tmp_path / "run"), name=logger_name) as path:
        log.info("inside")
    log.info("outside")
    assert path == str(tmp_path / "run" / "log.txt")
    text = _read(path)
    assert "inside" in text and "outside" not in text
    assert log.handlers == [] and log.level == logging.WARNING

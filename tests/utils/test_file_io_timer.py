"""Tests for fastreid.utils.file_io and fastreid.utils.timer."""

import logging

from fastreid.utils.file_io import PathManager
from fastreid.utils.timer import Timer, timed


def test_path_manager_local_roundtrip(tmp_path):
    target = tmp_path / "a" / "b"
    PathManager.mkdirs(str(target))
    with PathManager.open(str(target / "x.txt"), "w") as f:
        f.write("hello")
    assert PathManager.exists(str(target / "x.txt"))
    assert PathManager.ls(str(target)) == ["x.txt"]
    with PathManager.open(str(target / "x.txt")) as f:
        assert f.read() == "hello"


def test_remote_handlers_registered():
    # iopath has no public listing of handlers; the prefix map is the closest.
    prefixes = set(PathManager._path_handlers)
    assert {"http://", "https://"} <= prefixes
    assert any(p.startswith("https://1drv.ms/") for p in prefixes)


def test_timed_logs_duration(caplog):
    log = logging.getLogger("fastreid_test_timer")
    with caplog.at_level(logging.INFO, logger=log.name):
        with timed("block", log) as timer:
            assert isinstance(timer, Timer)
    (record,) = [r for r in caplog.records if r.name == log.name]
    assert record.getMessage().startswith("block took ")
    assert timer.seconds() >= 0

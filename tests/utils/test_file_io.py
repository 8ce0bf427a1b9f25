"""Tests for fastreid.utils.file_io."""

import os
import stat

import pytest

from fastreid.utils.file_io import PathManager, atomic_write


def test_path_manager_local_roundtrip(tmp_path):
    target = tmp_path / "a" / "b"
    PathManager.mkdirs(str(target))
    with PathManager.open(str(target / "x.txt"), "w") as f:
        f.write("hello")
    assert PathManager.exists(str(target / "x.txt"))
    assert PathManager.ls(str(target)) == ["x.txt"]
    with PathManager.open(str(target / "x.txt")) as f:
        assert f.read() == "hello"


def test_atomic_write_replaces_whole_file_with_usual_permissions(tmp_path):
    target = tmp_path / "state.bin"
    atomic_write(str(target), lambda f: f.write(b"first"))
    atomic_write(str(target), lambda f: f.write(b"second"))
    assert target.read_bytes() == b"second"
    assert os.listdir(tmp_path) == ["state.bin"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_atomic_write_dying_half_way_keeps_previous_content(tmp_path):
    target = tmp_path / "state.bin"
    target.write_bytes(b"good")

    def dies_half_way(f):
        f.write(b"trunc")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(str(target), dies_half_way)
    assert target.read_bytes() == b"good"
    assert os.listdir(tmp_path) == ["state.bin"]  # no temp file left behind


def test_remote_handlers_registered():
    # iopath has no public listing of handlers; the prefix map is the closest.
    prefixes = set(PathManager._path_handlers)
    assert {"http://", "https://"} <= prefixes
    assert any(p.startswith("https://1drv.ms/") for p in prefixes)


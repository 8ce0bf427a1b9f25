"""Tests for fastreid.utils.file_io."""

import errno
import io
import os
import re
import stat

import pytest
import torch

from fastreid.utils.file_io import PathManager, atomic_write, describe_file_start, remove_stale_temporaries


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



class _FillsUp(io.RawIOBase):
    """A file that takes ``room`` bytes and then fails as a full disk does."""

    def __init__(self, f, room):
        self.f, self.room = f, room

    def writable(self):
        return True

    def write(self, data):
        self.room -= len(data)
        if self.room < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.f.write(data)


def test_a_full_disk_under_torch_save_says_so_with_sizes(tmp_path):
    # torch turns the write error into "[enforce fail at inline_container.cc] unexpected pos", the OSError
    # being its context; atomic_write reports the disk, not torch's internals.
    target = tmp_path / "state.pth"
    target.write_bytes(b"good")
    with pytest.raises(OSError) as info:
        atomic_write(str(target), lambda f: torch.save({"w": torch.ones(100000)}, _FillsUp(f, 5000)),
                     size_hint=400000)
    assert info.value.errno == errno.ENOSPC
    assert str(info.value).startswith(f"[Errno 28] No space left on device writing {target} (0.4 MB needed, ")
    assert target.read_bytes() == b"good" and os.listdir(tmp_path) == ["state.pth"]


def test_temporaries_are_named_after_host_and_process(tmp_path):
    seen = []
    atomic_write(str(tmp_path / "x.bin"), lambda f: seen.append(os.path.basename(f.name)))
    assert re.fullmatch(rf"\.x\.bin\.{os.getpid()}@[\w.-]+-[0-9a-f]{{8}}\.tmp", seen[0])
    assert remove_stale_temporaries(str(tmp_path)) == (0, 0) and os.listdir(tmp_path) == ["x.bin"]


@pytest.mark.parametrize("content,expected", [
    (b"", "an empty file"),
    (b"<html><body>404</body></html>", "HTML"),
    (b"\x80\x04\x95\x00", "a Python pickle"),
    (b"PK\x03\x04" + b"\x00" * 40, "a truncated or damaged zip archive"),
    (b"hello world", "text of 11 bytes starting with 'hello world'"),
    (bytes([0xde, 0xad, 0xbe, 0xef, 0x01]), "5 bytes of binary data starting with deadbeef01"),
])
def test_describe_file_start(tmp_path, content, expected):
    path = tmp_path / "f"
    path.write_bytes(content)
    assert expected in describe_file_start(str(path))

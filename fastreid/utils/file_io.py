"""Path management through iopath, atomic local writes and the clean-up of their leftovers.

``PathManager`` is the one instance every fastreid module uses to open, list
and create files, so that remote storage handlers registered here (or by a
project) work everywhere. Registering a handler does no network access.

:func:`atomic_write` writes ``.<name>.<pid>@<host>-<random>.tmp`` beside the target and renames it over
the target; a process killed mid-write leaves that file, which :func:`remove_stale_temporaries` removes
once the process is provably gone. :func:`describe_file_start` says what a file that failed to parse is.
"""

import errno
import logging
import os
import re
import shutil
import socket
import stat
import uuid
import zipfile
from typing import BinaryIO, Callable, Optional, Tuple, Union

from iopath.common.file_io import (
    HTTPURLHandler,
    OneDrivePathHandler,
    PathHandler,
    PathManager as _PathManagerBase,
)

try:
    import fcntl
except ImportError:  # not on Windows: temporaries are then proven stale by host and pid alone
    fcntl = None

__all__ = [
    "PYTORCH_ARCHIVE",
    "PathHandler",
    "PathManager",
    "atomic_write",
    "describe_file_start",
    "remove_stale_temporaries",
    "try_lock",
]

logger = logging.getLogger(__name__)

PathManager = _PathManagerBase()
"""Project-wide :class:`iopath.common.file_io.PathManager` instance."""

PathManager.register_handler(HTTPURLHandler())
PathManager.register_handler(OneDrivePathHandler())

# .<target>.<pid>@<host>-<8 hex>.tmp; a host name holds no "@" or "/" (see _host()).
_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9._-]+)-[0-9a-f]{8}\.tmp$")
_MB = 2 ** 20


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "localhost"


def atomic_write(path: str, write_fn: Callable[[BinaryIO], object], *, size_hint: Optional[int] = None) -> None:
    """Writes a local file so that it is either fully there or not changed at all.

    ``write_fn`` fills a temporary binary file in the same folder, which is then
    flushed to disk and renamed over ``path``; the rename is made durable too.
    A crash at any point leaves the previous content of ``path`` (or no file); a
    failure removes the temporary file. The temporary is named after this host and
    process and locked while written, so that :func:`remove_stale_temporaries` can
    tell a leftover of a killed process from a file being written.

    Args:
        path: the local file to (over)write.
        write_fn: called with the open temporary file.
        size_hint: bytes the file is expected to take, quoted when the disk is full
            (default: what was written before the failure, as a lower bound).

    Raises:
        OSError: with errno ENOSPC and the message "No space left on device writing PATH (N MB needed,
            M MB free). ..." when the disk or quota is full (also when torch reports it as a short write);
            other errors as raised by ``write_fn`` or the file system.
    """
    folder = os.path.dirname(os.path.abspath(path))
    # A unique name opened exclusively (unlike mkstemp, with the usual permissions, not 0600).
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}@{_host()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            try_lock(f)
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        written = os.path.getsize(tmp) if os.path.exists(tmp) else 0
        if os.path.exists(tmp):
            os.remove(tmp)
        code = _disk_full_errno(e)
        if code is None:
            raise
        raise _disk_full_error(code, path, folder, size_hint, written) from e
    try:  # persist the rename itself
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def try_lock(f: Union[BinaryIO, int]) -> bool:
    """Takes an exclusive, non-blocking ``flock`` on the open file (or descriptor) ``f``, held until it is
    closed; False if another process holds one. True without locking where flock is missing (Windows, some
    network file systems), so callers fall back on host and process id."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # a file system without flock: host and pid remain the proof
        return True
    return True


def _disk_full_errno(error: BaseException) -> Optional[int]:
    """ENOSPC or EDQUOT when ``error`` or an exception it arose from says the disk or quota is full."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return error.errno
        # torch's zip writer reports a short write (how a full disk shows through a file object) this way.
        if isinstance(error, RuntimeError) and "unexpected pos" in str(error):
            return errno.ENOSPC
        error = error.__cause__ or error.__context__
    return None


def _disk_full_error(code: int, path: str, folder: str, size_hint: Optional[int], written: int) -> OSError:
    needed = f"{_mb(size_hint)} needed" if size_hint else f"at least {_mb(written)} needed"
    try:
        free = f"{_mb(shutil.disk_usage(folder).free)} free"
    except OSError:
        free = "free space unknown"
    quota = " (disk quota exceeded)" if code == errno.EDQUOT else ""
    return OSError(
        errno.ENOSPC,
        f"No space left on device{quota} writing {path} ({needed}, {free}). Nothing was changed: free some "
        f"space in {folder} (e.g. old checkpoints) or write to a larger disk (OUTPUT_DIR).",
    )


def _mb(num_bytes: int) -> str:
    return f"{num_bytes / _MB:.1f} MB" if num_bytes == 0 or num_bytes >= 0.05 * _MB else "< 0.1 MB"


def remove_stale_temporaries(folder: str) -> Tuple[int, int]:
    """Removes the temporaries that :func:`atomic_write` calls of this host left in ``folder`` when killed.

    A file is removed only when all of these hold: its name has :func:`atomic_write`'s pattern with this
    host's name, the process id in it is not running, it is a regular file and no one holds its lock.
    Other files, such as those of another host sharing the folder or of an older fastreid's naming, stay.

    Args:
        folder: a local folder; a missing one is fine.

    Returns:
        ``(number of files removed, bytes freed)``.
    """
    try:
        names = os.listdir(folder)
    except OSError:
        return 0, 0
    host, removed, freed = _host(), 0, 0
    for name in names:
        match = _TEMP_NAME.match(name)
        if match is None or match["host"] != host or _pid_alive(int(match["pid"])):
            continue
        size = _remove_if_unlocked(os.path.join(folder, name))
        if size is not None:
            removed, freed = removed + 1, freed + size
    return removed, freed


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` may be a running process (True when unsure)."""
    if pid <= 0 or pid == os.getpid():  # os.kill(0, ...) would address the process group
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, under another user
        return True
    return True


def _remove_if_unlocked(path: str) -> Optional[int]:
    """Removes the regular file ``path`` unless someone holds its lock; its size, or None if kept."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        with open(path, "rb") as f:
            if not try_lock(f):
                return None
            size = os.fstat(f.fileno()).st_size
            os.remove(path)
        return size
    except OSError as e:  # gone meanwhile, or not ours to remove
        logger.debug("Left %s: %s", path, e)
        return None


PYTORCH_ARCHIVE = "a PyTorch checkpoint archive"
"""What :func:`describe_file_start` says of a complete zip archive holding a PyTorch ``data.pkl``."""

_MAGIC = (
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (e.g. Keras weights)"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf", "a 7-zip archive"),
    (b"\x08\x01\x12", "probably an ONNX model (protobuf)"),
)


def describe_file_start(path: str) -> str:
    """What ``path`` looks like from its first bytes, for error messages about files that failed to load.

    Returns:
        e.g. ``"an empty file"``, ``"an HTML page (a failed download?)"``, ``"a Python pickle"``,
        ``"a truncated or damaged zip archive (1234 bytes)"`` or ``"4096 bytes of binary data starting with
        9f3a..."``.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as e:
        return f"unreadable ({e.strerror})"
    if size == 0:
        return "an empty file"
    if head.startswith(b"PK\x03\x04"):
        return _describe_zip(path, size)
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return f"a Python pickle of {size} bytes"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    if len(head) >= 10 and head[8:10] == b'{"':
        return "a safetensors file"
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<!doctype html", b"<html", b"<?xml", b"<")):
        return "an HTML or XML page (a failed download or a login page?)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and all(c.isprintable() or c in "\r\n\t" for c in text):
        return f"text of {size} bytes starting with {text[:40]!r}"
    return f"{size} bytes of binary data starting with {head[:8].hex()}"


def _describe_zip(path: str, size: int) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return f"a truncated or damaged zip archive of {size} bytes, without the directory a zip file ends with"
    if not any(name.endswith("data.pkl") for name in names):
        return f"a zip archive of {len(names)} files without the data.pkl of a PyTorch checkpoint"
    return PYTORCH_ARCHIVE

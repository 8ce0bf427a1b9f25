"""Path management through iopath.

``PathManager`` is the one instance every fastreid module uses to open, list
and create files, so that remote storage handlers registered here (or by a
project) work everywhere. Registering a handler does no network access.
"""

import os
import uuid
from typing import BinaryIO, Callable

from iopath.common.file_io import (
    HTTPURLHandler,
    OneDrivePathHandler,
    PathHandler,
    PathManager as _PathManagerBase,
)

__all__ = ["PathHandler", "PathManager", "atomic_write"]

PathManager = _PathManagerBase()
"""Project-wide :class:`iopath.common.file_io.PathManager` instance."""

PathManager.register_handler(HTTPURLHandler())
PathManager.register_handler(OneDrivePathHandler())


def atomic_write(path: str, write_fn: Callable[[BinaryIO], object]) -> None:
    """Writes a local file so that it is either fully there or not changed at all.

    ``write_fn`` fills a temporary binary file in the same folder, which is then
    flushed to disk and renamed over ``path``; the rename is made durable too.
    A crash at any point leaves the previous content of ``path`` (or no file).

    Args:
        path: the local file to (over)write.
        write_fn: called with the open temporary file.
    """
    folder = os.path.dirname(os.path.abspath(path))
    # A unique name opened exclusively (unlike mkstemp, with the usual permissions, not 0600).
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
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


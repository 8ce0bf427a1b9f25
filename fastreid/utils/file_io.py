"""Path management through iopath.

``PathManager`` is the one instance every fastreid module uses to open, list
and create files, so that remote storage handlers registered here (or by a
project) work everywhere. Registering a handler does no network access.
"""

from iopath.common.file_io import (
    HTTPURLHandler,
    OneDrivePathHandler,
    PathHandler,
    PathManager as _PathManagerBase,
)

__all__ = ["PathHandler", "PathManager"]

PathManager = _PathManagerBase()
"""Project-wide :class:`iopath.common.file_io.PathManager` instance."""

PathManager.register_handler(HTTPURLHandler())
PathManager.register_handler(OneDrivePathHandler())

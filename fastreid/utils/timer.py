"""Wall-clock timing helpers built on fvcore's :class:`Timer`."""

import logging
from contextlib import contextmanager
from typing import Iterator, Optional

from fvcore.common.timer import Timer

__all__ = ["Timer", "timed"]


@contextmanager
def timed(name: str, logger: Optional[logging.Logger] = None, level: int = logging.INFO) -> Iterator[Timer]:
    """Times the enclosed block and logs its duration when it exits.

    Args:
        name: label of the block in the log message.
        logger: logger to use; defaults to this module's logger.
        level: logging level of the message.

    Yields:
        Timer: the running timer, e.g. to read intermediate times.

    Example::

        with timed("feature extraction", logger):
            feats = extract(model, loader)
    """
    timer = Timer()
    try:
        yield timer
    finally:
        timer.pause()
        (logger or logging.getLogger(__name__)).log(level, "%s took %.3fs", name, timer.seconds())

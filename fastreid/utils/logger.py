"""Logger setup for fastreid processes and rate-limited logging helpers.

Library modules only call ``logging.getLogger(__name__)``; handlers are added
once per process by :func:`setup_logger` (normally from the launch script).
"""

import atexit
import copy
import logging
import os
import sys
import time
from collections import Counter
from contextlib import contextmanager
from typing import Dict, Hashable, Iterator, Optional, Tuple, Union

from termcolor import colored

from .file_io import PathManager

__all__ = ["log_every_n", "log_every_n_seconds", "log_first_n", "log_to_file", "setup_logger"]

_PLAIN_FORMAT = "[%(asctime)s] %(name)s %(levelname)s: %(message)s"
_DATE_FORMAT = "%m/%d %H:%M:%S"
# Marker attribute on handlers added by setup_logger, used to keep it idempotent.
_HANDLER_KEY_ATTR = "_fastreid_handler_key"


class _ColorfulFormatter(logging.Formatter):
    """Formatter that shortens the root logger name and highlights problems."""

    _LEVEL_PREFIXES = {
        logging.WARNING: ("WARNING", ["blink"]),
        logging.ERROR: ("ERROR", ["blink", "underline"]),
        logging.CRITICAL: ("ERROR", ["blink", "underline"]),
    }

    def __init__(self, fmt: str, datefmt: str, *, root_name: str, abbrev_name: str) -> None:
        super().__init__(fmt, datefmt=datefmt)
        self._root_name = root_name + "."
        self._abbrev_name = abbrev_name + "." if abbrev_name else ""

    def formatMessage(self, record: logging.LogRecord) -> str:
        # Work on a copy: the same record also reaches the plain file handler.
        record = copy.copy(record)
        record.name = record.name.replace(self._root_name, self._abbrev_name)
        message = super().formatMessage(record)
        prefix = self._LEVEL_PREFIXES.get(record.levelno)
        if prefix is None:
            return message
        return colored(prefix[0], "red", attrs=prefix[1]) + " " + message


def _has_handler(logger: logging.Logger, key: Tuple[str, ...]) -> bool:
    return any(getattr(h, _HANDLER_KEY_ATTR, None) == key for h in logger.handlers)


def _add_handler(logger: logging.Logger, handler: logging.Handler, key: Tuple[str, ...]) -> None:
    setattr(handler, _HANDLER_KEY_ATTR, key)
    logger.addHandler(handler)


def _log_file_name(output: str, distributed_rank: int) -> str:
    if output.endswith((".txt", ".log")):
        filename = output
    else:
        filename = os.path.join(output, "log.txt")
    if distributed_rank > 0:
        filename = f"{filename}.rank{distributed_rank}"
    return filename


def _open_log_stream(filename: str):
    stream = PathManager.open(filename, "a")
    atexit.register(stream.close)
    return stream


def setup_logger(
    output: Optional[str] = None,
    distributed_rank: int = 0,
    *,
    color: bool = True,
    name: str = "fastreid",
    abbrev_name: Optional[str] = None,
) -> logging.Logger:
    """Configures the ``name`` logger: stdout on rank 0, an optional log file per rank.

    Calling it again with the same arguments adds no handler; the same
    stdout stream and file are never attached twice.

    Args:
        output: a file name or a directory for the log. If it ends with
            ".txt" or ".log" it is the file name, otherwise logs go to
            ``output/log.txt``. Ranks > 0 write ``<file>.rank<N>``. None
            disables file logging.
        distributed_rank: global rank of this process.
        color: colour the stdout output (only when stdout is a terminal).
        name: the root module name of this logger.
        abbrev_name: abbreviation of ``name`` shown in stdout logs; "" hides
            it. Defaults to ``name`` itself.

    Returns:
        logging.Logger: the configured logger.
    """
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    if abbrev_name is None:
        abbrev_name = name

    if distributed_rank == 0 and not _has_handler(logger, ("stdout",)):
        handler = logging.StreamHandler(stream=sys.stdout)
        handler.setLevel(logging.DEBUG)
        if color and sys.stdout.isatty():
            date = colored("[%(asctime)s %(name)s]: ", "green")
            formatter = _ColorfulFormatter(
                date + "%(message)s", _DATE_FORMAT, root_name=name, abbrev_name=abbrev_name
            )
        else:
            formatter = logging.Formatter(_PLAIN_FORMAT, datefmt=_DATE_FORMAT)
        handler.setFormatter(formatter)
        _add_handler(logger, handler, ("stdout",))

    if output is not None:
        filename = _log_file_name(output, distributed_rank)
        key = ("file", os.path.abspath(filename))
        if not _has_handler(logger, key):
            PathManager.mkdirs(os.path.dirname(filename) or ".")
            handler = logging.StreamHandler(_open_log_stream(filename))
            handler.setLevel(logging.DEBUG)
            handler.setFormatter(logging.Formatter(_PLAIN_FORMAT, datefmt=_DATE_FORMAT))
            _add_handler(logger, handler, key)
    return logger


@contextmanager
def log_to_file(output: str, distributed_rank: int = 0, *, name: str = "fastreid") -> Iterator[str]:
    """Copies the ``name`` logger's records to a log file for the duration of the block.

    For entry points that run several times in one process (each run its own folder), where
    :func:`setup_logger`'s file handlers, which stay, would keep writing to earlier folders.

    Args:
        output: a ``.txt`` / ``.log`` file name, or a directory for ``output/log.txt``; ranks > 0 write
            ``<file>.rank<N>``.
        distributed_rank: global rank of this process.
        name: the logger.

    Yields:
        The log file's path.
    """
    logger = logging.getLogger(name)
    filename = _log_file_name(output, distributed_rank)
    PathManager.mkdirs(os.path.dirname(filename) or ".")
    stream = PathManager.open(filename, "a")
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter(_PLAIN_FORMAT, datefmt=_DATE_FORMAT))
    logger.addHandler(handler)
    level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield filename
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        handler.close()
        stream.close()


_THIS_FILE = os.path.normcase(os.path.abspath(__file__))
_FIRST_N_COUNTER: Counter = Counter()
_EVERY_N_COUNTER: Counter = Counter()
_LOG_TIMER: Dict[Hashable, float] = {}


def _find_caller() -> Tuple[str, Tuple[str, int, str]]:
    """Returns the module name and code location of the first frame outside this file."""
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if os.path.normcase(os.path.abspath(code.co_filename)) != _THIS_FILE:
            module = frame.f_globals.get("__name__", "__main__")
            if module == "__main__":
                module = "fastreid"
            return module, (code.co_filename, frame.f_lineno, code.co_name)
        frame = frame.f_back
    return "fastreid", ("<unknown>", 0, "<unknown>")


def log_first_n(
    lvl: int,
    msg: str,
    n: int = 1,
    *,
    name: Optional[str] = None,
    key: Union[str, Tuple[str, ...]] = "caller",
) -> None:
    """Logs only the first ``n`` times.

    Args:
        lvl: the logging level.
        msg: the message.
        n: number of times to log.
        name: name of the logger to use; defaults to the caller's module.
        key: "caller", "message" or a tuple of both; defines which calls count
            as duplicates. With "caller" the same call site logs at most ``n``
            times whatever the message; with "message" the same text logs at
            most ``n`` times from anywhere; with both, a call site may log each
            distinct message ``n`` times.
    """
    keys = (key,) if isinstance(key, str) else tuple(key)
    unknown = set(keys) - {"caller", "message"}
    if not keys or unknown:
        raise ValueError(f"key must be 'caller', 'message' or both, got {key!r}")
    module, caller = _find_caller()
    hash_key: Tuple = ()
    if "caller" in keys:
        hash_key += caller
    if "message" in keys:
        hash_key += (msg,)
    _FIRST_N_COUNTER[hash_key] += 1
    if _FIRST_N_COUNTER[hash_key] <= n:
        logging.getLogger(name or module).log(lvl, msg)


def log_every_n(lvl: int, msg: str, n: int = 1, *, name: Optional[str] = None) -> None:
    """Logs once every ``n`` calls from the same call site.

    Args:
        lvl: the logging level.
        msg: the message.
        n: log on calls 1, n + 1, 2n + 1, ...
        name: name of the logger to use; defaults to the caller's module.
    """
    module, caller = _find_caller()
    _EVERY_N_COUNTER[caller] += 1
    if n == 1 or _EVERY_N_COUNTER[caller] % n == 1:
        logging.getLogger(name or module).log(lvl, msg)


def log_every_n_seconds(lvl: int, msg: str, n: float = 1, *, name: Optional[str] = None) -> None:
    """Logs at most once every ``n`` seconds from the same call site.

    Args:
        lvl: the logging level.
        msg: the message.
        n: minimum number of seconds between two messages.
        name: name of the logger to use; defaults to the caller's module.
    """
    module, caller = _find_caller()
    last = _LOG_TIMER.get(caller)
    now = time.monotonic()
    if last is None or now - last >= n:
        _LOG_TIMER[caller] = now
        logging.getLogger(name or module).log(lvl, msg)

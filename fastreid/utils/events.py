"""Training event storage and the writers that periodically flush it.

The trainer opens one :class:`EventStorage` for the whole run; code anywhere
in the training step records metrics with ``get_event_storage().put_scalar``.
Writers (JSON lines, tensorboard, terminal) run every few iterations and only
output what is new since their previous call.
"""

import datetime
import json
import logging
import os
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import torch
from fvcore.common.history_buffer import HistoryBuffer

from .file_io import PathManager

__all__ = [
    "CommonMetricPrinter",
    "EventStorage",
    "EventWriter",
    "JSONWriter",
    "TensorboardXWriter",
    "get_event_storage",
]

logger = logging.getLogger(__name__)

_CURRENT_STORAGE_STACK: List["EventStorage"] = []

# Deferred device scalars are converted at the latest after this many puts, so
# a run without writers does not accumulate device tensors forever.
_MAX_PENDING_SCALARS = 1024


def get_event_storage() -> "EventStorage":
    """Returns the innermost active :class:`EventStorage`.

    Raises:
        RuntimeError: if no ``with EventStorage(...)`` block is active.
    """
    if not _CURRENT_STORAGE_STACK:
        raise RuntimeError(
            "get_event_storage() must be called inside a 'with EventStorage(...):' block, "
            "and none is active."
        )
    return _CURRENT_STORAGE_STACK[-1]


class EventStorage:
    """Stores scalars, images and histograms produced during training.

    Scalars are kept in fvcore :class:`HistoryBuffer` objects, one per name,
    which provide median / mean smoothing over a window.

    A scalar given as a CPU tensor or number is converted with ``float()`` in
    :meth:`put_scalar`. A scalar given as a tensor on an accelerator is kept
    (detached and cloned) and converted only when something reads the
    storage, typically a writer every few iterations, so recording a loss does
    not force a host-device synchronisation on every iteration.
    """

    def __init__(self, start_iter: int = 0) -> None:
        """
        Args:
            start_iter: the iteration number to start with.
        """
        self._history: Dict[str, HistoryBuffer] = defaultdict(HistoryBuffer)
        self._smoothing_hints: Dict[str, bool] = {}
        self._latest_scalars: Dict[str, Tuple[float, int]] = {}
        self._pending: List[Tuple[str, Union[float, torch.Tensor], int]] = []
        self._iter = int(start_iter)
        self._current_prefix = ""
        self._vis_data: List[Tuple[str, torch.Tensor, int]] = []
        self._histograms: List[Dict[str, Any]] = []

    def put_image(self, img_name: str, img_tensor: torch.Tensor) -> None:
        """Adds an image to be shown on tensorboard.

        Args:
            img_name: the name of the image.
            img_tensor: RGB image of shape (3, H, W), either float in [0, 1]
                or uint8 in [0, 255].
        """
        self._vis_data.append((self._current_prefix + img_name, img_tensor, self._iter))

    def put_scalar(self, name: str, value: Union[float, torch.Tensor], smoothing_hint: bool = True) -> None:
        """Adds a scalar to the history of ``name`` at the current iteration.

        Args:
            name: metric name; prefixed by the active :meth:`name_scope`.
            value: a number or a one-element tensor.
            smoothing_hint: whether this scalar is noisy and should be smoothed
                when logged. Writers read it through :meth:`smoothing_hints`
                and may ignore it. A name must always use the same hint.

        Raises:
            ValueError: on a multi-element tensor or a changed smoothing hint.
        """
        name = self._current_prefix + name
        existing_hint = self._smoothing_hints.setdefault(name, smoothing_hint)
        if existing_hint != smoothing_hint:
            raise ValueError(f"Scalar {name!r} was put with smoothing_hint={existing_hint} before.")
        if isinstance(value, torch.Tensor) and value.numel() != 1:
            raise ValueError(f"Scalar {name!r} must have one element, got shape {tuple(value.shape)}.")
        if isinstance(value, torch.Tensor) and value.device.type != "cpu":
            value = value.detach().clone()  # clone: the caller may update it in place
        else:
            value = float(value)
        self._pending.append((name, value, self._iter))
        if len(self._pending) >= _MAX_PENDING_SCALARS:
            self._flush()

    def put_scalars(self, *, smoothing_hint: bool = True, **kwargs: Union[float, torch.Tensor]) -> None:
        """Puts several scalars given as keyword arguments.

        Example::

            storage.put_scalars(loss=my_loss, accuracy=my_accuracy, smoothing_hint=True)
        """
        for name, value in kwargs.items():
            self.put_scalar(name, value, smoothing_hint=smoothing_hint)

    def put_histogram(self, hist_name: str, hist_tensor: torch.Tensor, bins: int = 1000) -> None:
        """Computes a histogram of a tensor for tensorboard.

        Args:
            hist_name: the name of the histogram.
            hist_tensor: a tensor of any shape.
            bins: number of histogram bins.
        """
        values = hist_tensor.detach().flatten().float()
        low, high = values.min().item(), values.max().item()
        counts = torch.histc(values, bins=bins, min=low, max=high)
        edges = torch.linspace(low, high, steps=bins + 1, dtype=torch.float32)
        self._histograms.append(
            dict(
                tag=self._current_prefix + hist_name,
                min=low,
                max=high,
                num=values.numel(),
                sum=float(values.sum()),
                sum_squares=float((values * values).sum()),
                bucket_limits=edges[1:].tolist(),
                bucket_counts=counts.tolist(),
                global_step=self._iter,
            )
        )

    def _flush(self) -> None:
        """Moves deferred scalars into their histories, in the order they were put."""
        for name, value, iteration in self._pending:
            value = float(value)
            self._history[name].update(value, iteration)
            self._latest_scalars[name] = (value, iteration)
        self._pending.clear()

    def history(self, name: str) -> HistoryBuffer:
        """Returns the :class:`HistoryBuffer` of scalar ``name``.

        Raises:
            KeyError: if no scalar ``name`` was put.
        """
        self._flush()
        if name not in self._history:
            raise KeyError(f"No history metric available for {name!r}.")
        return self._history[name]

    def histories(self) -> Dict[str, HistoryBuffer]:
        """Returns the :class:`HistoryBuffer` of every scalar, by name."""
        self._flush()
        return dict(self._history)

    def latest(self) -> Dict[str, Tuple[float, int]]:
        """Returns name -> (most recent value, iteration it was put at)."""
        self._flush()
        return dict(self._latest_scalars)

    def latest_with_smoothing_hint(self, window_size: int = 20) -> Dict[str, Tuple[float, int]]:
        """Like :meth:`latest`, but scalars whose smoothing hint is True report
        the median of their last ``window_size`` values instead.
        """
        self._flush()
        return {
            name: (self._history[name].median(window_size) if self._smoothing_hints[name] else value, itr)
            for name, (value, itr) in self._latest_scalars.items()
        }

    def smoothing_hints(self) -> Dict[str, bool]:
        """Returns name -> whether the scalar should be smoothed when logged."""
        return dict(self._smoothing_hints)

    def step(self) -> None:
        """Increments :attr:`iter`.

        Either call this once per iteration, or set :attr:`iter` before each
        iteration, so new data is associated with the right iteration.
        """
        self._iter += 1

    @property
    def iter(self) -> int:
        """The current iteration number; the trainer keeps it equal to its own."""
        return self._iter

    @iter.setter
    def iter(self, value: int) -> None:
        self._iter = int(value)

    def __enter__(self) -> "EventStorage":
        _CURRENT_STORAGE_STACK.append(self)
        return self

    def __exit__(self, exc_type, exc_val, exc_tb) -> None:
        if not _CURRENT_STORAGE_STACK or _CURRENT_STORAGE_STACK[-1] is not self:
            raise RuntimeError("EventStorage contexts must be exited in reverse order of entry.")
        _CURRENT_STORAGE_STACK.pop()

    @contextmanager
    def name_scope(self, name: str) -> Iterator[None]:
        """Prefixes the names of everything put inside the block with ``name/``.

        Scopes nest: ``name_scope("a")`` then ``name_scope("b")`` gives ``a/b/``.
        """
        old_prefix = self._current_prefix
        self._current_prefix = old_prefix + name.rstrip("/") + "/"
        try:
            yield
        finally:
            self._current_prefix = old_prefix

    def clear_images(self) -> None:
        """Deletes stored images; call after writing them to tensorboard."""
        self._vis_data = []

    def clear_histograms(self) -> None:
        """Deletes stored histograms; call after writing them to tensorboard."""
        self._histograms = []


class EventWriter:
    """Base class for writers that read the current :class:`EventStorage`."""

    def write(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _new_scalars(storage: EventStorage, window_size: int, last_write: int) -> Dict[int, Dict[str, float]]:
    """Groups scalars put after iteration ``last_write`` by iteration."""
    by_iter: Dict[int, Dict[str, float]] = defaultdict(dict)
    for name, (value, itr) in storage.latest_with_smoothing_hint(window_size).items():
        if itr > last_write:
            by_iter[itr][name] = value
    return dict(sorted(by_iter.items()))


class JSONWriter(EventWriter):
    """Writes scalars to a file as one JSON object per line.

    Each line holds the scalars recorded at one iteration plus an
    ``"iteration"`` key; a scalar is written once, at its latest iteration
    not yet written. Parse with e.g. ``jq -s`` or ``[json.loads(l) for l in f]``.
    """

    def __init__(self, json_file: str, window_size: int = 20) -> None:
        """
        Args:
            json_file: path of the file; new lines are appended if it exists.
            window_size: median-smoothing window for scalars whose smoothing
                hint is True.
        """
        self._file_handle = PathManager.open(json_file, "a")
        self._window_size = window_size
        self._last_write = -1

    def write(self) -> None:
        storage = get_event_storage()
        to_save = _new_scalars(storage, self._window_size, self._last_write)
        for itr, scalars in to_save.items():
            self._file_handle.write(json.dumps({**scalars, "iteration": itr}, sort_keys=True) + "\n")
        if to_save:
            self._last_write = max(to_save)
        self._file_handle.flush()
        try:
            os.fsync(self._file_handle.fileno())
        except (AttributeError, OSError):
            pass  # not a local file (remote iopath handler)

    def close(self) -> None:
        self._file_handle.close()


class TensorboardXWriter(EventWriter):
    """Writes scalars, images and histograms to tensorboard event files."""

    def __init__(self, log_dir: str, window_size: int = 20, **kwargs: Any) -> None:
        """
        Args:
            log_dir: directory of the event files.
            window_size: median-smoothing window for scalars whose smoothing
                hint is True.
            kwargs: other arguments of ``torch.utils.tensorboard.SummaryWriter``.
        """
        # Imported here: tensorboard is slow to import and only needed by this writer.
        from torch.utils.tensorboard import SummaryWriter

        self._window_size = window_size
        self._writer = SummaryWriter(log_dir, **kwargs)
        self._last_write = -1

    def write(self) -> None:
        storage = get_event_storage()
        to_save = _new_scalars(storage, self._window_size, self._last_write)
        for itr, scalars in to_save.items():
            for name, value in scalars.items():
                self._writer.add_scalar(name, value, itr)
        if to_save:
            self._last_write = max(to_save)

        # Images and histograms are cleared once written, so all stored ones are new.
        if storage._vis_data:
            for img_name, img, step in storage._vis_data:
                self._writer.add_image(img_name, img, step)
            storage.clear_images()
        if storage._histograms:
            for params in storage._histograms:
                self._writer.add_histogram_raw(**params)
            storage.clear_histograms()
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def _max_memory_mb() -> Optional[Tuple[str, float]]:
    """Returns (label, MB) of peak CUDA memory, else of the process peak RSS."""
    if torch.cuda.is_available():
        return "max_mem", torch.cuda.max_memory_allocated() / 1024.0 / 1024.0
    try:
        import resource
    except ImportError:  # not available on Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in bytes on macOS and in kilobytes on Linux.
    peak_bytes = peak if os.uname().sysname == "Darwin" else peak * 1024
    return "max_rss", peak_bytes / 1024.0 / 1024.0


class CommonMetricPrinter(EventWriter):
    """Logs iteration time, ETA, losses, learning rate and peak memory.

    Losses are the scalars whose names start with "loss", median-smoothed
    over ``window_size``; ``time`` and ``data_time`` are averaged over it.
    Peak memory is CUDA allocator memory when CUDA is available and the
    process peak resident set size otherwise.
    """

    def __init__(self, max_iter: Optional[int], window_size: int = 20) -> None:
        """
        Args:
            max_iter: total number of training iterations, used for the ETA.
                None disables the ETA.
            window_size: smoothing window for losses and times.
        """
        self._max_iter = max_iter
        self._window_size = window_size
        # (iteration, time) of the previous write, for an ETA without "time".
        self._last_write: Optional[Tuple[int, float]] = None
        self._last_printed_iter: Optional[int] = None

    def _get_eta(self, storage: EventStorage) -> Optional[str]:
        if self._max_iter is None:
            return None
        iteration = storage.iter
        remaining = self._max_iter - iteration - 1
        try:
            iter_time = storage.history("time").median(1000)
        except KeyError:
            iter_time = None
            now = time.perf_counter()
            if self._last_write is not None and iteration > self._last_write[0]:
                iter_time = (now - self._last_write[1]) / (iteration - self._last_write[0])
            self._last_write = (iteration, now)
            if iter_time is None:
                return None
        eta_seconds = iter_time * max(remaining, 0)
        storage.put_scalar("eta_seconds", eta_seconds, smoothing_hint=False)
        return str(datetime.timedelta(seconds=int(eta_seconds)))

    def _smoothed(self, storage: EventStorage, name: str, fmt: str) -> str:
        try:
            return fmt.format(storage.history(name).avg(self._window_size))
        except KeyError:
            return ""

    def write(self) -> None:
        storage = get_event_storage()
        if storage.iter == self._last_printed_iter:
            return  # the final write after the last epoch's write: nothing new to say
        self._last_printed_iter = storage.iter
        eta = self._get_eta(storage)
        losses = "  ".join(
            f"{name}: {hist.median(self._window_size):.4g}"
            for name, hist in storage.histories().items()
            if name.startswith("loss")
        )
        try:
            lr = f"lr: {storage.history('lr').latest():.5g}  "
        except KeyError:
            lr = ""
        memory = _max_memory_mb()
        parts = [
            f"eta: {eta}  " if eta else "",
            f"iter: {storage.iter}  ",
            f"{losses}  " if losses else "",
            self._smoothed(storage, "time", "time: {:.4f}  "),
            self._smoothed(storage, "data_time", "data_time: {:.4f}  "),
            lr,
            f"{memory[0]}: {memory[1]:.0f}M" if memory else "",
        ]
        logger.info(" " + "".join(parts).rstrip())

"""Memory-format helpers that keep a channels-last (NHWC) model's activations channels-last."""
import torch

__all__ = ["memory_format_of"]


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """``torch.channels_last`` when channels are the innermost dimension of the B×C×H×W ``x`` in memory (a
    channels-last map, or a strided view of one such as a slice of its channels), else
    ``torch.contiguous_format``.

    Where both layouts are the same (one channel, or a B×C×1×1 map in NCHW order) the answer is
    ``torch.contiguous_format``. Layers that copy or rebuild a map pass the result to
    ``.contiguous(memory_format=...)`` so the copy keeps the input's layout: a bare ``.contiguous()`` would
    turn a channels-last map back into NCHW.
    """
    if x.dim() == 4 and x.size(1) > 1 and x.stride(1) == 1 and x.stride(1) < min(x.stride(2), x.stride(3)):
        return torch.channels_last
    return torch.contiguous_format

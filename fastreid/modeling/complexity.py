"""Parameter and FLOP counts of a model (fvcore), and a CPU latency measurement.

fvcore counts one fused multiply-add as one flop, so the FLOP figures here are multiply-accumulates (MACs).
"""
import time
from typing import Any, List, Optional, Sequence, Tuple

import torch
from torch import nn

from fastreid.utils.env import import_fvcore_nn

__all__ = ["count_params", "count_params_and_flops", "measure_latency"]


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _attention_flop(inputs: List[Any], outputs: List[Any]) -> int:
    """MACs of ``scaled_dot_product_attention`` (fvcore has no handle): q·kᵀ plus attention·v.

    q is (..., L, E), k (..., S, E), v (..., S, Ev): ``prod(...)·L·S·(E + Ev)``.
    """
    get_shape = import_fvcore_nn().jit_handles.get_shape
    q, v = get_shape(inputs[0]), get_shape(inputs[2])
    batch = 1
    for n in q[:-2]:
        batch *= n
    length, embed = q[-2], q[-1]
    keys, value_dim = v[-2], v[-1]
    return batch * length * keys * (embed + value_dim)


def _example(model: nn.Module, input_size: Sequence[int], batch_size: int) -> torch.Tensor:
    device = next(model.parameters()).device
    return torch.rand(batch_size, 3, *input_size, device=device) * 255


def count_params_and_flops(
    model: nn.Module, input_size: Sequence[int] = (256, 128), batch_size: int = 1
) -> Tuple[int, int]:
    """Parameters and fvcore FLOPs (= MACs) of one eval-mode forward pass.

    Args:
        model: a backbone or a meta-architecture (anything taking a B×3×H×W tensor).
        input_size: (H, W) of the input.
        batch_size: B.

    Returns:
        (number of parameters, FLOPs of the forward pass at batch ``batch_size``).
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            analysis = import_fvcore_nn().FlopCountAnalysis(model, (_example(model, input_size, batch_size),))
            analysis.set_op_handle("aten::scaled_dot_product_attention", _attention_flop)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            flops = int(analysis.total())
    finally:
        model.train(was_training)
    return count_params(model), flops


def measure_latency(
    model: nn.Module,
    input_size: Sequence[int] = (256, 128),
    batch_size: int = 1,
    iters: int = 10,
    warmup: int = 2,
    autocast_dtype: Optional[torch.dtype] = None,
) -> float:
    """Median seconds per eval-mode forward pass.

    Args:
        autocast_dtype: run under ``torch.autocast`` of the model's device type with this dtype (e.g.
            ``torch.bfloat16`` on CPU); None runs in the model's own precision.
    """
    x = _example(model, input_size, batch_size)
    was_training = model.training
    model.eval()
    times = []
    try:
        with torch.no_grad(), torch.autocast(x.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            for i in range(warmup + iters):
                start = time.perf_counter()
                model(x)
                if i >= warmup:
                    times.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
    return sorted(times)[len(times) // 2]

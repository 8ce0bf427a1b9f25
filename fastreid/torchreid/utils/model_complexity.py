"""torchreid's ``compute_model_complexity`` on fvcore's FLOP counter (as :mod:`fastreid.modeling.complexity`).

Counts follow fvcore's conventions, as every FLOP figure fastreid reports: one multiply-add is one flop, and
bias additions are not counted (torchreid adds one per output of a biased convolution or linear layer). As in
torchreid, only what the eval-mode forward pass runs is counted: a classifier used only in training adds
neither parameters nor flops.
"""
import logging
from typing import Any, Callable, List, Sequence, Set, Tuple

import torch
from torch import nn

from fastreid.utils.env import import_fvcore_nn

__all__ = ["compute_model_complexity"]

logger = logging.getLogger(__name__)


Handle = Callable[[List[Any], List[Any]], int]


def _pool_handle(extra_per_window: int) -> Handle:
    """Pooling of kernel ``k``: ``(prod(k) + extra_per_window)`` per output (-1: a max's comparisons)."""

    def count(inputs: List[Any], outputs: List[Any]) -> int:
        get_shape = import_fvcore_nn().jit_handles.get_shape
        kernel = inputs[1].toIValue()
        if kernel is None:  # a list built in the graph from constants
            kernel = [v.toIValue() for v in inputs[1].node().inputs()]
        kernel = list(kernel) if isinstance(kernel, (list, tuple)) else [kernel]
        window = 1
        for k in kernel:
            window *= int(k)
        numel = 1
        for n in get_shape(outputs[0]):
            numel *= n
        return (window + extra_per_window) * numel

    return count


def _conv_linear_handles() -> dict:
    """fvcore's handles of convolutions and linear algebra: its default set without normalisation, pooling
    and upsampling."""
    jit = import_fvcore_nn().jit_handles
    return {
        "aten::_convolution": jit.conv_flop_jit, "aten::linear": jit.linear_flop_jit, "aten::addmm": jit.addmm_flop_jit,
        "aten::bmm": jit.bmm_flop_jit, "aten::matmul": jit.matmul_flop_jit, "aten::mm": jit.matmul_flop_jit,
        "aten::einsum": jit.einsum_flop_jit,
    }


def _all_layer_handles() -> dict:
    """Handles for activations and pooling, which fvcore does not count by default (one op per element of
    the output for ReLU, three for leaky ReLU, the window size for pooling; torchreid's rules)."""
    elementwise = import_fvcore_nn().jit_handles.elementwise_flop_counter
    handles = {f"aten::{op}": elementwise(0, 1) for op in ("relu", "relu_", "relu6", "hardtanh", "hardtanh_")}
    handles.update({f"aten::{op}": elementwise(0, 3) for op in ("leaky_relu", "leaky_relu_")})
    handles.update({f"aten::max_pool{d}d": _pool_handle(-1) for d in (1, 2, 3)})
    handles.update({f"aten::avg_pool{d}d": _pool_handle(0) for d in (1, 2, 3)})
    handles["aten::adaptive_max_pool2d"] = elementwise(1, 0)
    return handles


def _called_params(model: nn.Module, uncalled: Set[str]) -> int:
    """Parameters of ``model`` outside the modules the forward pass never called."""
    skipped = {id(p) for name, m in model.named_modules() if name in uncalled for p in m.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in skipped)


def compute_model_complexity(
    model: nn.Module, input_size: Sequence[int], verbose: bool = False, only_conv_linear: bool = True
) -> Tuple[int, int]:
    """Parameters and FLOPs of one eval-mode forward pass (torchreid's ``compute_model_complexity``).

    Args:
        model: maps a B×3×H×W tensor to its outputs; run once in eval mode under ``torch.no_grad`` (its
            training flag is restored).
        input_size: the input's shape, e.g. ``(1, 3, 256, 128)``.
        verbose: log the per-module table (parameters and flops) at INFO.
        only_conv_linear: count convolutions and linear layers (and matrix products) only; False also counts
            normalisation, activations, pooling and upsampling.

    Returns:
        ``(num_params, flops)``: parameters of the modules the forward pass uses, and its flops (multiply-adds)
        at the batch size of ``input_size``.
    """
    fvcore_nn = import_fvcore_nn()
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    inputs = torch.rand(*input_size, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            analysis = fvcore_nn.FlopCountAnalysis(model, (inputs,))
            if only_conv_linear:
                analysis.clear_op_handles().set_op_handle(**_conv_linear_handles())
            else:
                analysis.set_op_handle(**_all_layer_handles())
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            flops = int(analysis.total())
            num_params = _called_params(model, analysis.uncalled_modules())
            if verbose:
                logger.info("Model complexity with input size %s (flops = multiply-adds%s):\n%s\n"
                            "Total: params=%s, flops=%s", tuple(input_size),
                            ", conv/linear only" if only_conv_linear else "",
                            fvcore_nn.flop_count_table(analysis, max_depth=3), f"{num_params:,}", f"{flops:,}")
    finally:
        model.train(was_training)
    return num_params, flops

"""Deep Spatial feature Reconstruction (DSR, He et al., CVPR 2018): a distance between spatial feature maps of
different extents, for matching partial queries against holistic gallery images.

Each query location feature ``x`` (C,) is reconstructed from the gallery image's dictionary ``Y`` (M×C, one
row per gallery location, optionally at several pooling scales) by ridge regression,

    w* = argmin_w ‖x − Yᵀw‖² + β‖w‖² = (YYᵀ + βI)⁻¹ Y x,

and the distance is the mean reconstruction error ‖x − Yᵀw*‖² over the query's locations. The paper's
regulariser is an L1 (sparse) one solved iteratively; the ridge form used here has a closed form, so a whole
query × gallery matrix is a batch of small M×M solves.
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

__all__ = ["dsr_distance", "spatial_dictionary"]

# Elements of the largest temporary (gallery chunk × M × query locations) when no chunk size is given:
# 2**25 float32 values are 128 MiB.
_CHUNK_ELEMENTS = 2 ** 25


def spatial_dictionary(maps: torch.Tensor, scales: Sequence[int] = (1,)) -> torch.Tensor:
    """L2-normalised location features of feature maps, pooled at several scales.

    Args:
        maps: B×C×h×w feature maps.
        scales: k×k average-pooling windows (stride 1) whose outputs are all kept; 1 is the map itself.
            Larger windows describe bigger regions, which a zoomed-in partial query may match better.

    Returns:
        B×M×C, with M = Σ_k (h − k + 1)(w − k + 1) over the scales.
    """
    if maps.dim() != 4:
        raise ValueError(f"spatial_dictionary takes B×C×h×w maps, got shape {tuple(maps.shape)}")
    h, w = maps.shape[-2:]
    if not scales or any(k < 1 or k > min(h, w) for k in scales):
        raise ValueError(f"DSR pooling windows (TEST.DSR.GALLERY_SCALES) must be in [1, {min(h, w)}] for {h}×{w} "
                         f"maps, got {list(scales)}")
    parts = [F.avg_pool2d(maps, k, stride=1) if k > 1 else maps for k in scales]
    locations = torch.cat([p.flatten(2) for p in parts], dim=2).transpose(1, 2)
    return F.normalize(locations, dim=2)


def dsr_distance(query: torch.Tensor, gallery: torch.Tensor, regularizer: float = 0.1,
                 chunk_size: Optional[int] = None) -> torch.Tensor:
    """Mean ridge reconstruction error of every query's locations from every gallery item's dictionary.

    Uses ``‖x − Yᵀw‖² = ‖x‖² − aᵀw − β‖w‖²`` with ``a = Yx`` and ``w = (YYᵀ + βI)⁻¹a``, so no
    reconstruction is materialised.

    Args:
        query: Q×N×C location features of the queries (see :func:`spatial_dictionary`).
        gallery: G×M×C dictionaries of the gallery items.
        regularizer: β > 0, the ridge weight; it keeps the M×M systems well conditioned.
        chunk_size: gallery items per batch of solves (bounds memory); None picks it from a 128 MiB budget.

    Returns:
        Q×G distances (same dtype as ``query``), each in [0, mean ‖x‖²].
    """
    if query.dim() != 3 or gallery.dim() != 3 or query.shape[2] != gallery.shape[2]:
        raise ValueError("dsr_distance takes Q×N×C queries and G×M×C dictionaries with the same C, got "
                         f"{tuple(query.shape)} and {tuple(gallery.shape)}")
    if regularizer <= 0:
        raise ValueError(f"The DSR regulariser (TEST.DSR.REGULARIZER) must be positive, got {regularizer}")
    num_q, num_loc, _ = query.shape
    num_atoms = gallery.shape[1]
    x = query.reshape(num_q * num_loc, -1)
    x_sq = x.pow(2).sum(dim=1)
    eye = regularizer * torch.eye(num_atoms, dtype=gallery.dtype, device=gallery.device)
    step = chunk_size or max(1, _CHUNK_ELEMENTS // max(1, num_atoms * num_q * num_loc))
    blocks = []
    for start in range(0, gallery.shape[0], step):
        y = gallery[start:start + step]
        gram = y @ y.transpose(1, 2) + eye
        a = y @ x.t()  # g×M×QN
        w = torch.cholesky_solve(a, torch.linalg.cholesky(gram))
        err = x_sq - (a * w).sum(dim=1) - regularizer * w.pow(2).sum(dim=1)  # g×QN
        blocks.append(err.clamp_min(0).view(-1, num_q, num_loc).mean(dim=2))
    return torch.cat(blocks).t().to(query.dtype)

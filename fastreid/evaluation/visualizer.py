"""Rank-list images: a query and its top-k gallery results with match-coloured borders.

Gallery items are ordered by (distance, gallery index) and same-identity same-camera
items are left out, exactly as in :mod:`fastreid.evaluation.rank`; any (Q, G) distance
works, re-ranked ones included.
"""
import logging
import os
from typing import List, Sequence, Union

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageOps

from .rank import RankAccumulator

logger = logging.getLogger(__name__)

__all__ = ["visualize_ranked_results", "select_queries", "MATCH_COLOR", "MISMATCH_COLOR"]

MATCH_COLOR = (0, 200, 0)
MISMATCH_COLOR = (220, 0, 0)
QUERY_COLOR = (0, 0, 0)
_TITLE_H = 18


def select_queries(ap: np.ndarray, valid: np.ndarray, queries: Union[str, Sequence[int]], num: int,
                   seed: int = 0) -> List[int]:
    """Query indices to draw: the ``num`` lowest-AP ("worst"), highest-AP ("best") or random valid queries, or
    the given indices."""
    valid_idx = np.flatnonzero(valid)
    if not isinstance(queries, str):
        return [int(q) for q in queries]
    if queries == "worst":
        return valid_idx[np.argsort(ap[valid_idx], kind="stable")[:num]].tolist()
    if queries == "best":
        return valid_idx[np.argsort(-ap[valid_idx], kind="stable")[:num]].tolist()
    if queries == "random":
        rng = np.random.default_rng(seed)
        return sorted(rng.choice(valid_idx, size=min(num, len(valid_idx)), replace=False).tolist())
    raise ValueError(f"queries must be 'worst', 'best', 'random' or indices, got {queries!r}")


def ranked_gallery(dist_row: np.ndarray, q_pid: int, q_camid: int, g_pids: np.ndarray, g_camids: np.ndarray,
                   topk: int, ignore_camid: bool = False) -> np.ndarray:
    """Gallery indices of one query's rank list as drawn: by distance (ties by gallery index), without the
    query's same-identity same-camera items (unless ``ignore_camid``), the first ``topk``."""
    order = np.argsort(dist_row, kind="stable")
    if not ignore_camid:
        order = order[~((g_pids[order] == q_pid) & (g_camids[order] == q_camid))]
    return order[:topk]


def _tile(path: str, size, color, border: int) -> Image.Image:
    img = Image.open(path).convert("RGB").resize(size)
    return ImageOps.expand(img, border=border, fill=color)


def visualize_ranked_results(distmat, q_pids, g_pids, q_camids, g_camids, q_paths: Sequence[str],
                             g_paths: Sequence[str], output_dir: str, topk: int = 10,
                             queries: Union[str, Sequence[int]] = "worst", num_queries: int = 10,
                             ignore_camid: bool = False, image_size=(64, 128), border: int = 4,
                             seed: int = 0) -> List[str]:
    """Writes one PNG per selected query under ``output_dir``.

    Args:
        distmat: (Q, G) distances (NumPy or torch).
        q_pids, g_pids, q_camids, g_camids: labels as for ``evaluate_rank``.
        q_paths, g_paths: image files of queries and gallery.
        output_dir: created if missing.
        topk: gallery results per image.
        queries: ``"worst"`` / ``"best"`` (by AP), ``"random"``, or explicit query indices.
        num_queries: how many queries for the named selections.
        ignore_camid: as in ``evaluate_rank``.
        image_size: (width, height) of every tile.
        border: border width in pixels (query black, match green, non-match red).
        seed: for ``"random"``.

    Returns:
        The written file paths, in selection order.
    """
    dist = distmat.detach().cpu().numpy() if isinstance(distmat, torch.Tensor) else np.asarray(distmat)
    acc = RankAccumulator(q_pids, g_pids, q_camids, g_camids, ignore_camid=ignore_camid)
    acc.add(dist, 0)
    stats = acc.stats
    os.makedirs(output_dir, exist_ok=True)
    written = []
    for rank_idx, q in enumerate(select_queries(stats.ap, stats.valid, queries, num_queries, seed)):
        shown = ranked_gallery(dist[q], acc.q_pids[q], acc.q_camids[q], acc.g_pids, acc.g_camids, topk, ignore_camid)
        matches = acc.g_pids[shown] == acc.q_pids[q]
        w, h = image_size[0] + 2 * border, image_size[1] + 2 * border
        canvas = Image.new("RGB", ((len(shown) + 1) * (w + border), h + _TITLE_H), "white")
        canvas.paste(_tile(q_paths[q], image_size, QUERY_COLOR, border), (0, _TITLE_H))
        for i, (g, m) in enumerate(zip(shown, matches)):
            color = MATCH_COLOR if m else MISMATCH_COLOR
            canvas.paste(_tile(g_paths[g], image_size, color, border), ((i + 1) * (w + border), _TITLE_H))
        ap = stats.ap[q] if stats.valid[q] else float("nan")
        ImageDraw.Draw(canvas).text(
            (2, 2), f"query {q}  AP={ap * 100:.1f}%  sorted by distance ascending (ties: gallery index)",
            fill=(0, 0, 0))
        path = os.path.join(output_dir, f"{rank_idx:03d}_q{q}_{os.path.splitext(os.path.basename(q_paths[q]))[0]}.png")
        canvas.save(path)
        written.append(path)
    logger.info("Wrote %d rank lists to %s", len(written), output_dir)
    return written

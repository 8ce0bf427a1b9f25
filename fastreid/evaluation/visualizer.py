"""Rank-list images: a query and its top-k gallery results with match-coloured borders.

Gallery items are ordered by (distance, gallery index) and same-identity same-camera
items are left out, exactly as in :mod:`fastreid.evaluation.rank`; any (Q, G) distance
works, re-ranked ones included. A tracklet (a sequence of frame paths instead of one
path) is drawn as its first, middle and last frames side by side in one border.
"""
import logging
import os
from typing import List, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageOps

from .rank import RankAccumulator

logger = logging.getLogger(__name__)

__all__ = ["visualize_ranked_results", "select_queries", "shown_frames", "MATCH_COLOR", "MISMATCH_COLOR"]

# An image path, or the frame paths of a tracklet in temporal order.
ItemPath = Union[str, Sequence[str]]

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


def shown_frames(path: ItemPath) -> Tuple[str, ...]:
    """The files drawn for one item: an image path itself; of a tracklet its first, middle (index ``n // 2``)
    and last frames (fewer when it has fewer than three frames)."""
    if isinstance(path, (str, os.PathLike)):
        return (path,)
    frames = list(path)
    if not frames:
        raise ValueError("Cannot draw a tracklet without frames")
    picks = sorted({0, len(frames) // 2, len(frames) - 1})
    return tuple(frames[i] for i in picks)


def _tile(path: ItemPath, size, color, border: int) -> Image.Image:
    files = shown_frames(path)
    strip = Image.new("RGB", (size[0] * len(files), size[1]))
    for i, file in enumerate(files):
        strip.paste(Image.open(file).convert("RGB").resize(size), (i * size[0], 0))
    return ImageOps.expand(strip, border=border, fill=color)


def _name_of(path: ItemPath) -> str:
    return os.path.splitext(os.path.basename(shown_frames(path)[0]))[0]


def visualize_ranked_results(distmat, q_pids, g_pids, q_camids, g_camids, q_paths: Sequence[ItemPath],
                             g_paths: Sequence[ItemPath], output_dir: str, topk: int = 10,
                             queries: Union[str, Sequence[int]] = "worst", num_queries: int = 10,
                             ignore_camid: bool = False, image_size=(64, 128), border: int = 4,
                             seed: int = 0) -> List[str]:
    """Writes one PNG per selected query under ``output_dir``.

    Args:
        distmat: (Q, G) distances (NumPy or torch).
        q_pids, g_pids, q_camids, g_camids: labels as for ``evaluate_rank``.
        q_paths, g_paths: image files of queries and gallery, or for tracklets sequences of frame files
            (drawn as first, middle and last frames).
        output_dir: created if missing.
        topk: gallery results per image.
        queries: ``"worst"`` / ``"best"`` (by AP), ``"random"``, or explicit query indices.
        num_queries: how many queries for the named selections.
        ignore_camid: as in ``evaluate_rank``.
        image_size: (width, height) of every image (a tracklet tile holds three).
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
        tiles = [_tile(q_paths[q], image_size, QUERY_COLOR, border)]
        tiles += [_tile(g_paths[g], image_size, MATCH_COLOR if m else MISMATCH_COLOR, border)
                  for g, m in zip(shown, matches)]
        width = sum(t.width + border for t in tiles)
        canvas = Image.new("RGB", (width, max(t.height for t in tiles) + _TITLE_H), "white")
        x = 0
        for tile in tiles:
            canvas.paste(tile, (x, _TITLE_H))
            x += tile.width + border
        ap = stats.ap[q] if stats.valid[q] else float("nan")
        ImageDraw.Draw(canvas).text(
            (2, 2), f"query {q}  AP={ap * 100:.1f}%  sorted by distance ascending (ties: gallery index)",
            fill=(0, 0, 0))
        path = os.path.join(output_dir, f"{rank_idx:03d}_q{q}_{_name_of(q_paths[q])}.png")
        canvas.save(path)
        written.append(path)
    logger.info("Wrote %d rank lists to %s", len(written), output_dir)
    return written

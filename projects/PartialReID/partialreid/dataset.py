"""``PartialSyntheticPerson``: SyntheticPerson with every query cut to a partial view; the gallery stays whole."""
import hashlib
import json
import os
from typing import Dict, Iterable, List, Sequence

import numpy as np
from PIL import Image

from fastreid.data.datasets import DATASET_REGISTRY, SyntheticPerson
from fastreid.data.datasets.synthetic import ensure_generated

__all__ = ["PartialSyntheticPerson", "crop_to_part"]

SIDES = ("top", "bottom")


def crop_to_part(img: Image.Image, side: str, fraction: float) -> Image.Image:
    """The ``side`` ("top" or "bottom") part of ``img`` holding ``fraction`` of its height (at least one row)."""
    if side not in SIDES:
        raise ValueError(f"Unknown partial side {side!r}; expected one of {SIDES}")
    width, height = img.size
    keep = min(height, max(1, round(fraction * height)))
    box = (0, 0, width, keep) if side == "top" else (0, height - keep, width, height)
    return img.crop(box)


def _digest(names: Iterable[str]) -> str:
    # Identifies the query list in the crops' meta.json without writing every name there (or in the log).
    return hashlib.sha1("\n".join(names).encode()).hexdigest()


@DATASET_REGISTRY.register()
class PartialSyntheticPerson(SyntheticPerson):
    """The SyntheticPerson set (same train split and gallery) with partial queries, as in Partial-REID:
    each query keeps a random top or bottom part of the person, resized back to the test size by the loader.

    The cropped queries are written once into ``<root>/SyntheticPerson/partial_query/``, inside the generated
    set they are cut from, so regenerating that set discards them; they are recut when the crop parameters
    change. Each query's side and fraction depend only on ``crop_seed`` and its position in the query list.

    Args:
        root: datasets root.
        min_fraction, max_fraction: range of the kept fraction of the height, in (0, 1].
        sides: the parts that may be kept ("top", "bottom").
        crop_seed: seed of the crops.
        kwargs: SyntheticPerson's arguments (``num_ids``, ``height``, ...) and the base class's.
    """

    def __init__(self, root: str = "datasets", *, min_fraction: float = 0.5, max_fraction: float = 0.75,
                 sides: Sequence[str] = SIDES, crop_seed: int = 0, **kwargs) -> None:
        if not 0 < min_fraction <= max_fraction <= 1:
            raise ValueError("PartialSyntheticPerson needs 0 < MIN_FRACTION <= MAX_FRACTION <= 1 "
                             f"(DATASETS.PARTIAL_SYNTHETIC), got {min_fraction} and {max_fraction}")
        unknown = [s for s in sides if s not in SIDES]
        if not sides or unknown:
            raise ValueError(f"DATASETS.PARTIAL_SYNTHETIC.SIDES must list some of {SIDES}, got {list(sides)}")
        super().__init__(root, **kwargs)
        folder = os.path.join(self.data_dir, "partial_query")
        params = {"min_fraction": float(min_fraction), "max_fraction": float(max_fraction), "sides": list(sides),
                  "seed": int(crop_seed), "queries": _digest(os.path.basename(r[0]) for r in self.query)}
        holistic = list(self.query)
        ensure_generated(folder, params, write=lambda tmp, p: self._write_crops(tmp, p, holistic))
        self.query = [(os.path.join(folder, os.path.basename(path)), *rest) for path, *rest in holistic]
        self.split_sources = {**self.split_sources, "query": folder}

    @staticmethod
    def _write_crops(folder: str, params: Dict, records: List) -> None:
        for index, (path, *_) in enumerate(records):
            rng = np.random.default_rng([params["seed"], index])
            side = params["sides"][int(rng.integers(len(params["sides"])))]
            fraction = float(rng.uniform(params["min_fraction"], params["max_fraction"]))
            with Image.open(path) as img:
                crop_to_part(img.convert("RGB"), side, fraction).save(
                    os.path.join(folder, os.path.basename(path)), quality=92)
        with open(os.path.join(folder, "meta.json"), "w") as f:
            json.dump(params, f, indent=1)

    @classmethod
    def from_config(cls, cfg) -> dict:
        p = cfg.DATASETS.PARTIAL_SYNTHETIC
        return {**super().from_config(cfg), "min_fraction": p.MIN_FRACTION, "max_fraction": p.MAX_FRACTION,
                "sides": tuple(p.SIDES), "crop_seed": p.SEED}

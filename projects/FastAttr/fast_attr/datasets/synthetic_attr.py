"""SyntheticPersonAttr: fastreid's procedural SyntheticPerson images labelled with the generator's own attributes.

Every identity of SyntheticPerson is drawn from an :class:`~fastreid.data.datasets.synthetic_render.Identity`
(hat, hair, sleeves, clothing pattern and colours, bag...). :func:`identity_attributes` turns it into the
binary vector of :data:`ATTRIBUTE_NAMES`, so the images carry exact attribute labels and the project trains
and evaluates without any download.
"""
from typing import List

import numpy as np

from fastreid.data.datasets import DATASET_REGISTRY, SyntheticPerson
from fastreid.data.datasets.synthetic import synthetic_identity
from fastreid.data.datasets.synthetic_render import (BACKPACK, CHECKS, CLOTH_PALETTE, H_STRIPES, SHORTS,
                                                     SHOULDER_BAG, SKIRT, V_STRIPES, Identity)

from .bases import AttributeDataset, AttributeRecord

__all__ = ["ATTRIBUTE_NAMES", "CLOTH_COLOURS", "SyntheticPersonAttr", "identity_attributes"]

CLOTH_COLOURS = ("black", "white", "red", "blue", "green", "yellow", "grey", "brown")
"""Names of the rows of the generator's ``CLOTH_PALETTE``, in order."""

ATTRIBUTE_NAMES = (
    "hat", "long_hair", "long_sleeves", "backpack", "shoulder_bag", "top_stripes", "top_checks", "shorts", "skirt",
    *(f"top_{c}" for c in CLOTH_COLOURS), *(f"bottom_{c}" for c in CLOTH_COLOURS),
)
"""The 25 attributes: 9 of shape and carried objects, then the main colour of the top and of the bottom."""


def _colour_index(colour: np.ndarray) -> int:
    matches = np.flatnonzero(np.all(CLOTH_PALETTE == np.asarray(colour, dtype=CLOTH_PALETTE.dtype), axis=1))
    if len(matches) != 1:
        raise ValueError(f"Colour {colour} is not a row of the generator's CLOTH_PALETTE")
    return int(matches[0])


def identity_attributes(person: Identity) -> np.ndarray:
    """The (25,) float32 0/1 vector of :data:`ATTRIBUTE_NAMES` describing ``person``.

    Vertical and horizontal stripes both count as ``top_stripes``; trousers are neither ``shorts`` nor
    ``skirt``; a top's colour is its main colour (the pattern's second colour is not an attribute).
    """
    flags = [person.hat, person.long_hair, person.long_sleeves, person.bag == BACKPACK, person.bag == SHOULDER_BAG,
             person.top_pattern in (H_STRIPES, V_STRIPES), person.top_pattern == CHECKS,
             person.bottom_type == SHORTS, person.bottom_type == SKIRT]
    top, bottom = np.zeros(len(CLOTH_COLOURS)), np.zeros(len(CLOTH_COLOURS))
    top[_colour_index(person.top)] = 1
    bottom[_colour_index(person.bottom)] = 1
    return np.concatenate([np.array(flags, dtype=np.float64), top, bottom]).astype(np.float32)


@DATASET_REGISTRY.register()
class SyntheticPersonAttr(AttributeDataset):
    """The SyntheticPerson images (generated on first use) with the attributes of their identity.

    Train images are SyntheticPerson's training identities; test images are all images (query and gallery) of
    its test identities, so no identity is in both. Takes the DATASETS.SYNTHETIC.* keys, as SyntheticPerson.

    Args:
        root: datasets root; the images live in ``root/SyntheticPerson/``.
        num_ids, num_cameras, images_per_id, height, width, seed: see
            :class:`fastreid.data.datasets.SyntheticPerson`.
        kwargs: ``combineall``, ``verbose``.
    """

    def __init__(self, root: str = "datasets", num_ids: int = 200, num_cameras: int = 6, images_per_id: int = 20,
                 height: int = 128, width: int = 64, seed: int = 0, **kwargs) -> None:
        person = SyntheticPerson(root, num_ids=num_ids, num_cameras=num_cameras, images_per_id=images_per_id,
                                 height=height, width=width, seed=seed, verbose=False)
        self.seed = seed
        self.data_dir = person.data_dir
        self.split_sources = {"train": person.split_sources["train"],
                              "query": f"{person.split_sources['query']} and {person.split_sources['gallery']}"}
        train = self._labelled(person, ["train"])
        test = self._labelled(person, ["query", "gallery"])
        super().__init__(train, test, ATTRIBUTE_NAMES, **kwargs)

    @classmethod
    def from_config(cls, cfg) -> dict:
        return SyntheticPerson.from_config(cfg)

    def _labelled(self, person: SyntheticPerson, splits: List[str]) -> List[AttributeRecord]:
        table = {}
        records = []
        for split in splits:
            for path, pid, camid in person.process_dir(person.split_sources[split]):
                if pid not in table:
                    table[pid] = identity_attributes(synthetic_identity(self.seed, pid))
                records.append((path, pid, camid, table[pid]))
        return records

"""PRID2011 multi-shot (Hirzer et al., SCIA 2011): tracklets of 385 (cam_a) and 749 (cam_b) persons.

Layout under ``root/prid2011/`` (the same folder as the single-shot ``PRID`` set)::

    prid_2011/multi_shot/cam_a/person_0001/0001.png   # frames in temporal (name) order
    prid_2011/multi_shot/cam_b/person_0001/...
    splits_prid2011.json                              # [{"train": [folder, ...], "test": [folder, ...]}, ...]

``splits_prid2011.json`` is the split file distributed with torchreid (made by the iLIDS-VID authors): 10
splits of the 178 persons, among the first 200 (those seen by both cameras), whose sequences are longer than a
threshold (Wang et al., ECCV 2014), half for training and half for test. Test persons' ``cam_a`` tracklets are the
queries and their ``cam_b`` tracklets the gallery. Ids are the folder numbers (``person_0001`` -> 1).
"""
import json
import os
from typing import List

from .bases import DatasetNotFoundError, README_HINT
from .build import DATASET_REGISTRY
from .ilidsvid import CameraPairSequences, Split


@DATASET_REGISTRY.register()
class PRID2011(CameraPairSequences):
    """PRID2011 video re-id set (see the module docstring for the layout and protocol)."""

    dataset_dirs = ("prid2011",)
    camera_dirs = (("prid_2011", "multi_shot", "cam_a"), ("prid_2011", "multi_shot", "cam_b"))
    split_file = "splits_prid2011.json"

    def load_splits(self) -> List[Split]:
        path = os.path.join(self.data_dir, self.split_file)
        if not os.path.isfile(path):
            raise DatasetNotFoundError(
                f"PRID2011: expected the split file '{path}' (splits_prid2011.json, distributed with torchreid's "
                f"dataset instructions) beside 'prid_2011/'. {README_HINT}")
        with open(path) as f:
            splits = json.load(f)
        if not isinstance(splits, list) or not all(isinstance(s, dict) and {"train", "test"} <= set(s)
                                                   for s in splits):
            raise ValueError(f"PRID2011: {path} must be a list of {{'train': [...], 'test': [...]}} splits")
        return [([str(n) for n in s["train"]], [str(n) for n in s["test"]]) for s in splits]

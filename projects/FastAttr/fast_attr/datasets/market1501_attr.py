"""Market-1501-attribute (Lin et al., Pattern Recognition 2019): 27 attributes of every Market-1501 identity."""
import os
from typing import Dict, List, Tuple

import numpy as np
from scipy.io import loadmat

from fastreid.data.datasets import DATASET_REGISTRY, Market1501
from fastreid.data.datasets.bases import require_paths

from .bases import AttributeDataset, AttributeRecord

__all__ = ["Market1501Attr"]

LAYOUT = """Market-1501-v15.09.15/
  bounding_box_train/, query/, bounding_box_test/   the Market-1501 images
  market_attribute.mat   struct market_attribute with fields train and test, each a struct of 1 x N fields:
                         image_index (cell of 4-digit identity strings), age (1-4) and 26 two-valued
                         attributes (1 = no / first value, 2 = yes / second value)"""

AGE_GROUPS = ("young", "teenager", "adult", "old")
"""Market's ``age`` values 1-4, each one binary attribute ``age_<group>``."""

IdentityAttributes = Dict[int, np.ndarray]


def _values(field) -> np.ndarray:
    """A struct field loaded with ``squeeze_me`` as a 1-D array (fields are wrapped in 0-d object arrays)."""
    while isinstance(field, np.ndarray) and field.dtype == object and field.ndim == 0:
        field = field.item()
    return np.atleast_1d(field)


def _split_table(struct, split: str, path: str) -> Tuple[List[str], IdentityAttributes]:
    """Attribute names and ``{pid: (A,) 0/1 vector}`` of one split of ``market_attribute``."""
    if split not in (struct.dtype.names or ()):
        raise ValueError(f"Market1501Attr: {path} has no market_attribute.{split}. Expected:\n{LAYOUT}")
    table = struct[split].item()
    fields = sorted(f for f in table.dtype.names if f != "image_index")
    if "image_index" not in table.dtype.names or "age" not in fields:
        raise ValueError(f"Market1501Attr: market_attribute.{split} in {path} needs image_index and age fields")
    pids = [int(s) for s in _values(table["image_index"])]
    columns, names = [], []
    for field in fields:
        values = _values(table[field]).astype(np.int64)
        if field == "age":
            columns += [values == k + 1 for k in range(len(AGE_GROUPS))]
            names += [f"age_{group}" for group in AGE_GROUPS]
        else:
            columns.append(values == 2)
            names.append(field)
    matrix = np.stack(columns, axis=1).astype(np.float32)
    return names, {pid: matrix[i] for i, pid in enumerate(pids)}


@DATASET_REGISTRY.register()
class Market1501Attr(AttributeDataset):
    """Market-1501 images labelled with their identity's attributes (layout: :data:`LAYOUT`).

    Training images are those of ``bounding_box_train`` and test images those of ``bounding_box_test`` (as in
    fast-reid), each labelled with the attributes of its identity from ``market_attribute.mat``; distractors
    (pid 0) and junk (pid -1) are left out. Attributes are the mat file's fields in sorted order, with a
    two-valued field present when its value is 2 (``hat``: wears a hat; ``hair``: long hair; ``gender``:
    female; ``up``: short sleeves; ``down``: short lower-body clothing; ``clothes``: pants rather than a dress)
    and the four-valued ``age`` split into ``age_young``, ``age_teenager``, ``age_adult`` and ``age_old``.

    Args:
        root: datasets root holding the Market-1501 folder (see :class:`fastreid.data.datasets.Market1501`).
        kwargs: ``combineall``, ``verbose``.

    Raises:
        DatasetNotFoundError: the Market-1501 folders or ``market_attribute.mat`` are missing.
        ValueError: an image's identity has no entry in the attribute file.
    """

    def __init__(self, root: str = "datasets", **kwargs) -> None:
        market = Market1501(root, verbose=False)
        path = os.path.join(market.data_dir, "market_attribute.mat")
        require_paths(self.dataset_name, path, layout=LAYOUT)
        struct = loadmat(path, squeeze_me=True).get("market_attribute")
        if struct is None:
            raise ValueError(f"{self.dataset_name}: {path} holds no 'market_attribute' struct. Expected:\n{LAYOUT}")
        names, train_table = _split_table(struct, "train", path)
        test_names, test_table = _split_table(struct, "test", path)
        if test_names != names:
            raise ValueError(f"{self.dataset_name}: the train and test attributes of {path} differ")
        self.data_dir = market.data_dir
        self.split_sources = {"train": market.split_sources["train"], "query": market.split_sources["gallery"]}
        train = self._labelled(market, "train", train_table, path)
        test = self._labelled(market, "gallery", test_table, path)
        super().__init__(train, test, names, **kwargs)

    def _labelled(self, market: Market1501, split: str, table: IdentityAttributes,
                  path: str) -> List[AttributeRecord]:
        records = []
        for img_path, pid, camid in market.process_dir(market.split_sources[split]):
            if pid <= 0:
                continue
            if pid not in table:
                raise ValueError(f"{self.dataset_name}: identity {pid:04d} of {img_path} has no attributes in {path}")
            records.append((img_path, pid, camid, table[pid]))
        return records

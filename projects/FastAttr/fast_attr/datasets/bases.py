"""``AttributeDataset``: the base of pedestrian attribute datasets."""
import logging
from typing import List, Sequence, Tuple

import numpy as np
from tabulate import tabulate

from fastreid.data.datasets import ImageDataset

logger = logging.getLogger(__name__)

__all__ = ["AttributeDataset", "AttributeRecord", "positive_ratios"]

AttributeRecord = Tuple[str, int, int, np.ndarray]
"""``(img_path, pid, camid, attributes)``: ``attributes`` is an (A,) float32 vector of 0/1 labels."""


def positive_ratios(records: Sequence[AttributeRecord]) -> np.ndarray:
    """(A,) fraction of ``records`` in which each attribute is present."""
    return np.stack([r[3] for r in records]).mean(axis=0)


class AttributeDataset(ImageDataset):
    """A pedestrian attribute dataset: ``train`` and ``test`` lists of :data:`AttributeRecord`.

    The test records are the base class's ``query`` and the gallery is empty: attribute recognition has no
    retrieval protocol. ``combineall`` appends the test records to ``train`` (with scoped ids, as for re-id).

    Args:
        train, test: records whose attribute vectors have one 0/1 entry per name of ``attribute_names``.
        attribute_names: the A attribute names, in vector order.
        kwargs: ``combineall``, ``verbose`` (see :class:`fastreid.data.datasets.Dataset`).

    Raises:
        ValueError: a record's attribute vector has another length or a value other than 0 and 1.
    """

    def __init__(self, train: List[AttributeRecord], test: List[AttributeRecord], attribute_names: Sequence[str],
                 **kwargs) -> None:
        self.attribute_names = tuple(attribute_names)
        train, test = self._checked(train), self._checked(test)
        super().__init__(train, test, [], **kwargs)

    @property
    def test(self) -> List[AttributeRecord]:
        """The test records (the ``query`` list)."""
        return self.query

    def _checked(self, records: List[AttributeRecord]) -> List[AttributeRecord]:
        out = []
        for path, pid, camid, attributes in records:
            attributes = np.asarray(attributes, dtype=np.float32).reshape(-1)
            if attributes.shape != (len(self.attribute_names),) or not np.isin(attributes, (0, 1)).all():
                raise ValueError(f"{self.dataset_name}: {path} has attributes {attributes.tolist()}; expected "
                                 f"{len(self.attribute_names)} values in {{0, 1}} ({', '.join(self.attribute_names)})")
            out.append((path, pid, camid, attributes))
        return out

    def show_train(self) -> None:
        """Log the number of training images and each attribute's share of positives."""
        ratios = positive_ratios(self.train) if self.train else np.zeros(len(self.attribute_names))
        rows = [(name, f"{100 * r:.1f}") for name, r in zip(self.attribute_names, ratios)]
        logger.info("=> Loaded %s (train): %d images, %d attributes\n%s", self.dataset_name, len(self.train),
                    len(self.attribute_names), tabulate(rows, headers=["attribute", "% positive"], tablefmt="pipe"))

    def show_test(self) -> None:
        logger.info("=> Loaded %s (test): %d images", self.dataset_name, len(self.test))

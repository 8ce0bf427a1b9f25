"""Pedestrian attribute metrics (fast-reid's FastAttr definitions) and the evaluator that reports them."""
import logging
from collections import OrderedDict
from typing import Any, Dict, Mapping, Optional, Sequence

import torch
from tabulate import tabulate

from fastreid.config import configurable
from fastreid.evaluation import DatasetEvaluator
from fastreid.utils import comm

logger = logging.getLogger(__name__)

__all__ = ["AttrEvaluator", "attribute_metrics", "per_attribute_accuracy"]


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    # An empty denominator counts as 0 (the eps convention of attribute benchmarks; fast-reid would give NaN).
    return torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(num))


def per_attribute_accuracy(probs: torch.Tensor, labels: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """(A,) label-based accuracy of each attribute: (TP / P + TN / N) / 2, its mean recall over both classes.

    Args:
        probs: N×A predicted probabilities; an attribute is predicted present when ``probs >= threshold``.
        labels: N×A 0/1 ground truth.
        threshold: decision threshold (TEST.THRES).
    """
    pred, gt = probs >= threshold, labels > 0.5
    tpr = _ratio((pred & gt).sum(0).double(), gt.sum(0).double())
    tnr = _ratio((~pred & ~gt).sum(0).double(), (~gt).sum(0).double())
    return (tpr + tnr) / 2


def attribute_metrics(probs: torch.Tensor, labels: torch.Tensor, threshold: float = 0.5) -> Dict[str, float]:
    """Label-based mA and the instance-based accuracy, precision, recall and F1, in percent.

    * ``mA``: mean over attributes of :func:`per_attribute_accuracy`.
    * ``Accu``, ``Prec``, ``Recall``: means over images of |P ∩ G| / |P ∪ G|, |P ∩ G| / |P| and |P ∩ G| / |G|,
      P and G being the image's predicted and true attribute sets (a ratio with an empty denominator is 0).
    * ``F1``: 2 Prec Recall / (Prec + Recall), from the means (as fast-reid).
    * ``metric``: mA (what the best checkpoint is chosen by).

    Args:
        probs: N×A predicted probabilities.
        labels: N×A 0/1 ground truth.
        threshold: an attribute is predicted present when its probability is at least this.
    """
    if probs.shape != labels.shape or probs.dim() != 2 or probs.shape[0] == 0:
        raise ValueError(f"Expected N×A probabilities and labels with N > 0, got {tuple(probs.shape)} and "
                         f"{tuple(labels.shape)}")
    pred, gt = probs >= threshold, labels > 0.5
    inter = (pred & gt).sum(1).double()
    accu = _ratio(inter, (pred | gt).sum(1).double()).mean()
    prec = _ratio(inter, pred.sum(1).double()).mean()
    recall = _ratio(inter, gt.sum(1).double()).mean()
    f1 = _ratio(2 * prec * recall, prec + recall)
    m_a = per_attribute_accuracy(probs, labels, threshold).mean()
    results = OrderedDict((name, float(value) * 100) for name, value in
                          (("Accu", accu), ("Prec", prec), ("Recall", recall), ("F1", f1), ("mA", m_a)))
    results["metric"] = results["mA"]
    return results


class AttrEvaluator(DatasetEvaluator):
    """Collects the model's B×A attribute probabilities and the B×A labels (``inputs["targets"]``) of a test
    set and reports :func:`attribute_metrics` (main process; ``{}`` elsewhere). The accuracy of each attribute
    is logged as a table.

    Args:
        threshold: decision threshold (TEST.THRES).
        attribute_names: names for the logged table (optional).
    """

    @configurable
    def __init__(self, *, threshold: float = 0.5, attribute_names: Sequence[str] = ()) -> None:
        self.threshold = threshold
        self.attribute_names = tuple(attribute_names)
        self.reset()

    @classmethod
    def from_config(cls, cfg, attribute_names: Sequence[str] = ()) -> Dict[str, Any]:
        return {"threshold": cfg.TEST.THRES, "attribute_names": attribute_names}

    def reset(self) -> None:
        self._probs, self._labels = [], []

    def process(self, inputs: Mapping[str, Any], outputs: torch.Tensor) -> None:
        self._probs.append(outputs.detach().float().cpu())
        self._labels.append(torch.as_tensor(inputs["targets"]).detach().float().cpu())

    def evaluate(self) -> Dict[str, float]:
        parts = [(self._probs, self._labels)]
        if comm.get_world_size() > 1:
            comm.synchronize()
            parts = comm.all_gather(parts[0])
            if not comm.is_main_process():
                return {}
        probs = torch.cat([p for part in parts for p in part[0]])
        labels = torch.cat([t for part in parts for t in part[1]])
        self._log_table(per_attribute_accuracy(probs, labels, self.threshold))
        return attribute_metrics(probs, labels, self.threshold)

    def _log_table(self, accuracy: torch.Tensor) -> None:
        names: Optional[Sequence[str]] = self.attribute_names if len(self.attribute_names) == len(accuracy) else None
        rows = [(names[i] if names else i, f"{100 * float(a):.2f}") for i, a in enumerate(accuracy)]
        logger.info("Per-attribute accuracy (mean of TPR and TNR):\n%s",
                    tabulate(rows, headers=["attribute", "mA"], tablefmt="pipe"))

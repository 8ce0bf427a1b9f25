"""An evaluator that keeps the features and labels of a test set, in dataset order across processes."""
from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import torch

from fastreid.utils import comm

from .evaluator import DatasetEvaluator

__all__ = ["FeatureCollector"]


class FeatureCollector(DatasetEvaluator):
    """Keeps what :func:`~fastreid.evaluation.inference_on_dataset` feeds it.

    ``process(inputs, outputs)`` takes ``inputs["targets"]`` (B,) identities, ``inputs["camids"]``
    (B,) cameras, optionally ``inputs["img_paths"]`` (B paths) and ``inputs["indices"]`` (B,) dataset
    indices, and ``outputs`` (B, D) features.

    Under DDP, :meth:`collect` all-gathers the records of every process. If every batch gave
    ``indices``, samples are put back in dataset order and duplicates (padding of distributed
    samplers) dropped; otherwise the shards are concatenated in rank order, which restores the dataset
    order for contiguous shards such as the ``InferenceSampler``'s.

    Attributes:
        device: device of the last ``outputs`` seen (features are kept on the CPU).
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._records: List[Dict[str, Any]] = []
        self.device = torch.device("cpu")

    def process(self, inputs: Mapping[str, Any], outputs: torch.Tensor) -> None:
        self.device = outputs.device
        record = {
            "feats": outputs.detach().float().cpu(),
            "pids": torch.as_tensor(inputs["targets"]).cpu().long(),
            "camids": torch.as_tensor(inputs["camids"]).cpu().long(),
            "img_paths": list(inputs.get("img_paths", [""] * len(outputs))),
        }
        if "indices" in inputs:
            record["indices"] = torch.as_tensor(inputs["indices"]).cpu().long()
        self._records.append(record)

    def collect(self) -> Optional[Dict[str, Any]]:
        """Everything processed so far, by every process; None on non-main processes.

        Returns:
            ``{"feats": (N, D) float32 CPU tensor, "pids": (N,) long, "camids": (N,) long,
            "img_paths": list of N str}`` and, when every batch gave them, ``"indices"`` (N,) long
            (sorted). A new copy on every call: the caller may modify it.

        Raises:
            RuntimeError: nothing was processed.
        """
        records = self._records
        if comm.get_world_size() > 1:
            comm.synchronize()
            gathered = comm.all_gather(records)
            if not comm.is_main_process():
                return None
            records = [r for part in gathered for r in part]
        if not records:
            raise RuntimeError(f"{type(self).__name__}: evaluate() called before any process().")
        data = {k: torch.cat([r[k] for r in records]) for k in ("feats", "pids", "camids")}
        data["img_paths"] = [p for r in records for p in r["img_paths"]]
        if all("indices" in r for r in records):
            idx = torch.cat([r["indices"] for r in records])
            uniq, first = np.unique(idx.numpy(), return_index=True)
            order = torch.from_numpy(first)
            data = {k: (v[order] if torch.is_tensor(v) else [v[i] for i in first]) for k, v in data.items()}
            data["indices"] = torch.from_numpy(uniq)
        return data

    def evaluate(self) -> Dict[str, Any]:
        """:meth:`collect`, or ``{}`` on non-main processes."""
        data = self.collect()
        return {} if data is None else data

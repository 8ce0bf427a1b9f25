"""torchreid-style views of fastreid's loaders: batches as torchreid's dicts, training in epochs.

fastreid's batches hold ``images`` on the 0-255 scale (the model normalises them); torchreid's hold ``img``
already normalised with ``norm_mean`` / ``norm_std`` on the 0-1 scale. The views below convert each batch on
the fly, so the data pipeline (and its exact-resume position) stays fastreid's own.
"""
from typing import Any, Dict, Iterator, Mapping, Optional, Sequence

import torch
from torch.utils.data import DataLoader

from fastreid.data.build import TrainDataLoader

__all__ = ["TorchreidTestLoader", "TorchreidTrainLoader", "normalize_images", "to_torchreid_batch"]


def normalize_images(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """torchreid's input normalisation of fastreid images.

    Args:
        images: float ``... x 3 x H x W`` on the 0-255 scale.
        mean, std: per-channel statistics on the 0-1 scale (torchreid's ``norm_mean`` / ``norm_std``).

    Returns:
        ``(images / 255 - mean) / std``, same shape.
    """
    mean_t = torch.as_tensor(mean, dtype=images.dtype, device=images.device).view(3, 1, 1)
    std_t = torch.as_tensor(std, dtype=images.dtype, device=images.device).view(3, 1, 1)
    return (images / 255.0 - mean_t) / std_t


def to_torchreid_batch(batch: Mapping[str, Any], mean: Sequence[float], std: Sequence[float],
                       dsetid_of: Optional[Mapping[str, int]] = None) -> Dict[str, Any]:
    """A fastreid batch dict as torchreid's: ``img``, ``pid``, ``camid``, ``dsetid``, ``impath``.

    Args:
        batch: fastreid batch: ``images`` float ``B x 3 x H x W`` (or ``B x k x 3 x H x W`` with ``k_tfm`` > 1),
            0-255; ``targets``, ``camids`` long ``B``; ``img_paths`` list of str.
        mean, std: torchreid's ``norm_mean`` / ``norm_std``.
        dsetid_of: image path -> index of its source dataset; None = all 0.

    Returns:
        ``img`` normalised ``B x 3 x H x W`` (a list of ``k`` such tensors with ``k_tfm`` > 1), ``pid`` and
        ``camid`` long ``B``, ``dsetid`` long ``B``, ``impath`` list of str.
    """
    images = normalize_images(batch["images"], mean, std)
    paths = list(batch["img_paths"])
    dsetids = [dsetid_of.get(p, 0) for p in paths] if dsetid_of else [0] * len(paths)
    return {
        "img": list(images.unbind(1)) if images.dim() == 5 else images,
        "pid": batch["targets"],
        "camid": batch["camids"],
        "dsetid": torch.as_tensor(dsetids, dtype=torch.long),
        "impath": paths,
    }


class TorchreidTrainLoader:
    """fastreid's infinite :class:`fastreid.data.build.TrainDataLoader`, iterated one epoch at a time.

    Each ``for data in loader`` yields ``len(loader)`` torchreid batches and stops; the next epoch continues
    the same sampler stream, so :meth:`state_dict` / :meth:`load_state_dict` resume exactly as fastreid's
    loader does.

    Args:
        loader: the fastreid train loader.
        batches_per_epoch: batches of one epoch (torchreid's ``len(train_loader)``).
        mean, std: torchreid's ``norm_mean`` / ``norm_std``.

    Attributes:
        loader: the fastreid loader (fastreid batch keys; what fastreid's trainer consumes).
        dataset: its :class:`fastreid.data.CommDataset`.
    """

    def __init__(self, loader: TrainDataLoader, batches_per_epoch: int, mean: Sequence[float],
                 std: Sequence[float]) -> None:
        self.loader = loader
        self.dataset = loader.dataset
        self.batch_size = loader.batch_sampler.batch_size
        self.mean, self.std = list(mean), list(std)
        self._num_batches = int(batches_per_epoch)
        self._dsetid_of = {r[0]: s for r, s in zip(self.dataset.img_items, self.dataset.set_ids)
                           if isinstance(r[0], str)}
        self._iterator: Optional[Iterator] = None

    def __len__(self) -> int:
        return self._num_batches

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        if self._iterator is None:
            self._iterator = iter(self.loader)
        for _ in range(self._num_batches):
            yield self.convert(next(self._iterator))

    def convert(self, batch: Mapping[str, Any]) -> Dict[str, Any]:
        """One batch of :attr:`loader` as torchreid's dict (see :func:`to_torchreid_batch`)."""
        return to_torchreid_batch(batch, self.mean, self.std, self._dsetid_of)

    def state_dict(self) -> Dict[str, int]:
        """The fastreid loader's position (``{"seed", "start"}``)."""
        return self.loader.state_dict()

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Continue from a :meth:`state_dict`; the next epoch starts there."""
        self.loader.load_state_dict(state)
        self._iterator = None


class TorchreidTestLoader:
    """A finite fastreid test loader (query or gallery, in order) yielding torchreid batches.

    Args:
        loader: the loader from :func:`fastreid.data.build_reid_test_loader`.
        mean, std: torchreid's ``norm_mean`` / ``norm_std``.
    """

    def __init__(self, loader: DataLoader, mean: Sequence[float], std: Sequence[float]) -> None:
        self.loader = loader
        self.dataset = loader.dataset
        self.mean, self.std = list(mean), list(std)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        for batch in self.loader:
            yield to_torchreid_batch(batch, self.mean, self.std)

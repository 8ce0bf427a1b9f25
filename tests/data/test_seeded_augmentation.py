"""Training augmentation as a pure function of (sampler seed, rank, position): workers and resume are bit-exact."""
import itertools
import random

import numpy as np
import pytest
import torch
import torchvision.transforms as T

from fastreid.data import CommDataset, build_reid_train_loader
from fastreid.data.samplers import SeededSampler, TrainingSampler, sample_seed
from fastreid.data.transforms import ToTensor255

from .conftest import write_images


class _GlobalNoise:
    """Adds noise drawn from one global generator ("torch", "random" or "numpy") to a 0-255 tensor."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if self.source == "torch":
            return img + torch.rand(img.shape)
        if self.source == "random":
            return img + torch.tensor([random.random() for _ in range(img.numel())]).view(img.shape)
        return img + torch.from_numpy(np.random.rand(*img.shape).astype(np.float32))


def _random_transform(noise: str = "torch") -> T.Compose:
    return T.Compose([T.Pad(2), T.RandomCrop((32, 16)), T.RandomHorizontalFlip(0.5), ToTensor255(),
                      T.RandomErasing(p=1.0, value=0), _GlobalNoise(noise)])


@pytest.fixture
def items(tmp_path):
    paths = write_images(tmp_path, [f"{i}.jpg" for i in range(4)], size=(32, 16))
    return [(p, f"X_{i % 2}", "X_0") for i, p in enumerate(paths)]


def _rng_states():
    return torch.get_rng_state(), random.getstate(), np.random.get_state()


def _assert_same_states(a, b):
    assert torch.equal(a[0], b[0]) and a[1] == b[1]
    assert a[2][0] == b[2][0] and np.array_equal(a[2][1], b[2][1]) and a[2][2:] == b[2][2:]


@pytest.mark.parametrize("noise", ["torch", "random", "numpy"])
def test_same_pair_same_image_other_seed_other_image(items, noise):
    ds = CommDataset(items, _random_transform(noise))
    first = ds[(1, 123)]["images"]
    assert torch.equal(ds[(1, 123)]["images"], first)
    assert torch.equal(CommDataset(items, _random_transform(noise))[(1, 123)]["images"], first)
    assert not torch.equal(ds[(1, 124)]["images"], first)
    assert ds[(1, 123)]["img_paths"] == ds[1]["img_paths"] == items[1][0]


def test_seeded_sample_leaves_global_rng_states_alone(items):
    ds = CommDataset(items, _random_transform("numpy"))
    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    before = _rng_states()
    single = [ds[(i, 2**64 - 1 - i)]["images"] for i in range(3)]
    _assert_same_states(_rng_states(), before)
    batch = ds.__getitems__([(i, 2**64 - 1 - i) for i in range(3)])  # what the loader calls
    assert all(torch.equal(a, b["images"]) for a, b in zip(single, batch))
    _assert_same_states(_rng_states(), before)
    ds.__getitems__([0, 1])  # plain indices draw from the global generators as before
    assert not torch.equal(torch.get_rng_state(), before[0])


def test_skipped_bad_image_keeps_the_sample_seed(items, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    ds = CommDataset([(str(bad), "X_0", "X_0")] + items, _random_transform(), skip_bad_images=True)
    sample = ds[(0, 77)]
    assert ds.num_skipped == 1 and sample["img_paths"] == items[0][0]
    assert torch.equal(sample["images"], ds[(1, 77)]["images"])


def test_seeded_sampler_positions_survive_a_resume():
    full = list(itertools.islice(SeededSampler(TrainingSampler(5, seed=3, rank=1, world_size=2)), 12))
    assert [i for i, _ in full] == list(itertools.islice(TrainingSampler(5, seed=3, rank=1, world_size=2), 12))
    assert [s for _, s in full] == [sample_seed(3, 1, p) for p in range(12)]
    assert len(set(s for _, s in full)) == 12 and sample_seed(3, 0, 0) != sample_seed(3, 1, 0)
    resumed = SeededSampler(TrainingSampler(5, seed=3, rank=1, world_size=2, start=7))
    assert list(itertools.islice(resumed, 5)) == full[7:]
    assert resumed.seed == 3 and resumed.rank == 1 and resumed.state_dict() == {"seed": 3, "start": 7}
    resumed.load_state_dict({"seed": 3, "start": 2})
    assert list(itertools.islice(resumed, 3)) == full[2:5]


def _batches(cfg, n, **kwargs):
    loader = build_reid_train_loader(cfg, seed=11, **kwargs)
    assert isinstance(loader.batch_sampler.sampler, SeededSampler) and loader.batch_sampler.sampler.seed == 11
    return [(b["images"], b["img_paths"]) for b in itertools.islice(iter(loader), n)]


def _assert_same_batches(a, b):
    assert len(a) == len(b)
    for (images_a, paths_a), (images_b, paths_b) in zip(a, b):
        assert paths_a == paths_b and torch.equal(images_a, images_b)


def test_train_batches_do_not_depend_on_workers_or_resume(tiny_synthetic_cfg):
    tiny_synthetic_cfg.merge_from_list(["INPUT.REA.ENABLED", True, "INPUT.REA.PROB", 0.5])
    torch.manual_seed(0)
    before = torch.get_rng_state()
    in_process = _batches(tiny_synthetic_cfg, 6)
    assert torch.equal(torch.get_rng_state(), before)  # augmentation no longer draws from the caller's stream
    assert len({b[0].sum().item() for b in in_process}) == 6
    tiny_synthetic_cfg.merge_from_list(["DATALOADER.NUM_WORKERS", 2])
    _assert_same_batches(_batches(tiny_synthetic_cfg, 6), in_process)
    _assert_same_batches(_batches(tiny_synthetic_cfg, 3, start_iter=3), in_process[3:])

"""Tests for fastreid.utils.env."""

import random

import numpy as np
import pytest
import torch

from fastreid.utils.env import collect_env_info, resolve_device, seed_all_rng, set_torch_threads


def _draw():
    return random.random(), np.random.rand(3).tolist(), torch.rand(3)


def test_seed_all_rng_is_reproducible():
    assert seed_all_rng(123) == 123
    first = _draw()
    seed_all_rng(123)
    second = _draw()
    assert first[0] == second[0] and first[1] == second[1]
    assert torch.equal(first[2], second[2])
    seed_all_rng(124)
    assert not torch.equal(torch.rand(3), first[2])


def test_seed_all_rng_generates_and_returns_seed():
    seed = seed_all_rng(None)
    assert isinstance(seed, int) and 0 <= seed < 2**31
    expected = torch.rand(4)
    seed_all_rng(seed)
    assert torch.equal(torch.rand(4), expected)


def test_collect_env_info():
    info = collect_env_info()
    assert isinstance(info, str)
    assert "PyTorch" in info and torch.__version__ in info
    assert "numpy" in info and "fastreid" in info


def test_resolve_device_cpu():
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_resolve_device_cuda_without_gpu(name):
    with pytest.raises(ValueError, match="MODEL.DEVICE cpu") as err:
        resolve_device(name)
    assert f"device '{name}'" in str(err.value)
    assert "no CUDA device is available" in str(err.value)


def test_resolve_device_invalid_name():
    with pytest.raises(ValueError, match="not a valid torch device"):
        resolve_device("gpu0")


def test_set_torch_threads():
    before = torch.get_num_threads()
    try:
        assert set_torch_threads(1) == 1 == torch.get_num_threads()
        assert set_torch_threads(None) == 1
        with pytest.raises(ValueError):
            set_torch_threads(0)
    finally:
        torch.set_num_threads(before)

"""Fault injection at the model and index files that tools read: ImageNet weights, a gallery index's metadata."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fastreid.modeling.pretrained import load_pretrained_weights
from fastreid.search import GalleryIndex

_SPEC = importlib.util.spec_from_file_location("search_tool", Path(__file__).parents[2] / "tools" / "search.py")
search_tool = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(search_tool)


def test_random_bytes_as_pretrained_weights_are_named_without_unsafe_advice(tmp_path):
    path = tmp_path / "resnet50.pth"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match="not a PyTorch checkpoint") as info:
        load_pretrained_weights(nn.Linear(2, 2), str(path))
    assert str(path) in str(info.value) and "weights_only=False" not in str(info.value)


def test_index_metadata_without_its_model_asks_for_the_config(tmp_path):
    folder = tmp_path / "index"
    GalleryIndex.build(torch.randn(5, 4), [f"g{i}.jpg" for i in range(5)]).save(str(folder))
    meta = json.loads((folder / "meta.json").read_text())
    assert "config_file" not in meta  # built from Python, not by the tool: no model recorded
    args = search_tool.build_parser().parse_args(["query", "--index-dir", str(folder), "--query", str(tmp_path)])
    with pytest.raises(ValueError, match="meta.json.*--config-file"):
        search_tool.run_query(args)

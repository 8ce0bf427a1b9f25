"""A failed write during export (a full disk) raises OSError and leaves the previous file as it was."""
import errno
import os

import pytest

from fastreid.export import export_onnx, export_torchscript

from .conftest import INPUT_SIZE, make_model

pytestmark = [
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
    pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning"),
]

TINY = ["MODEL.BACKBONE.NAME", "build_export_test_tiny_backbone"]


def _disk_full(fd):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("export,name", [(export_torchscript, "model.pt"), (export_onnx, "model.onnx")])
def test_export_over_an_existing_file_fails_cleanly_when_the_disk_is_full(tmp_path, monkeypatch, export, name):
    path = tmp_path / name
    path.write_bytes(b"previous export")
    monkeypatch.setattr(os, "fsync", _disk_full)
    with pytest.raises(OSError, match="No space left"):
        export(make_model(TINY), str(path), input_size=INPUT_SIZE)
    assert path.read_bytes() == b"previous export"
    assert os.listdir(tmp_path) == [name]  # no temporary file left behind
    monkeypatch.undo()
    export(make_model(TINY), str(path), input_size=INPUT_SIZE)
    assert path.stat().st_size > 1000

"""Fault injection on checkpoints (issue 11): non-finite state, a full disk, another architecture's weights,
files that are not checkpoints, leftovers of killed saves, malicious files and a broken ``last_checkpoint``."""
import errno
import json
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fastreid.config import get_cfg
from fastreid.modeling import build_model
from fastreid.utils.checkpoint import Checkpointer, load_inference_weights
from fastreid.utils.file_io import atomic_write

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from trainer_utils import tiny_cfg  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
MARKER = Path("/tmp/fastreid_checkpoint_faults_marker")


class _Net(nn.Module):
    def __init__(self, num_classes=3, width=5):
        super().__init__()
        self.backbone = nn.Linear(4, width)
        self.classifier = nn.Linear(width, num_classes)


def _trained(folder):
    torch.manual_seed(0)
    model = _Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.classifier(model.backbone(torch.randn(2, 4))).sum().backward()
    opt.step()
    return model, opt, Checkpointer(model, str(folder), save_to_disk=True, optimizer=opt)


def _messages(caplog, level=logging.WARNING):
    return [r.getMessage() for r in caplog.records if r.levelno >= level]


# --- 1. non-finite state never becomes the resume point ---------------------------------------------------------


def test_a_model_with_an_infinite_weight_is_not_saved_and_last_checkpoint_is_kept(tmp_path):
    model, opt, ckpt = _trained(tmp_path)
    ckpt.save("model_0000", iteration=0)
    with torch.no_grad():
        model.backbone.weight[0, 0] = float("inf")
    with pytest.raises(FloatingPointError) as info:
        ckpt.save("model_0001", iteration=1)
    text = str(info.value)
    assert "model/backbone.weight" in text and "model_0000.pth" in text
    assert "SOLVER.BASE_LR" in text and "SOLVER.CLIP_GRADIENTS" in text
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000.pth"


def test_nan_in_the_optimizer_state_alone_is_refused_too(tmp_path):
    model, opt, ckpt = _trained(tmp_path)
    next(iter(opt.state.values()))["momentum_buffer"][0] = float("nan")
    with pytest.raises(FloatingPointError, match="optimizer/state/.*momentum_buffer") as info:
        ckpt.save("model_0000")
    assert "none yet" in str(info.value)
    assert os.listdir(tmp_path) == []


def test_a_diverging_training_leaves_no_non_finite_checkpoint(tmp_path):
    """SGD at lr 1e38 makes the weights infinite in the first step; the reported reproduction of issue 11."""
    from fastreid.engine import DefaultTrainer

    out = tmp_path / "out"
    cfg = tiny_cfg(str(tmp_path / "data"), str(out), [
        "SOLVER.OPT", "SGD", "SOLVER.BASE_LR", "1e38", "SOLVER.WARMUP_ITERS", "0", "SOLVER.MAX_EPOCH", "1",
        "SOLVER.CHECKPOINT_PERIOD_ITERS", "1", "TEST.EVAL_PERIOD", "0"])
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=False)
    with pytest.raises(FloatingPointError, match="none yet"):
        trainer.train()
    assert not (out / "last_checkpoint").exists()
    assert not list(out.glob("*.pth"))


def test_resume_refuses_a_non_finite_checkpoint_of_an_older_version(tmp_path):
    model, opt, ckpt = _trained(tmp_path)
    ckpt.save("model_0000", iteration=0)
    bad = torch.load(tmp_path / "model_0000.pth", weights_only=True)
    bad["model"]["classifier.bias"][1] = float("nan")
    torch.save(bad, tmp_path / "model_0001.pth")  # as written before the check existed
    (tmp_path / "last_checkpoint").write_text("model_0001.pth")
    fresh, fresh_opt, fresh_ckpt = _trained(tmp_path)
    with pytest.raises(ValueError) as info:
        fresh_ckpt.resume_or_load("", resume=True)
    text = str(info.value)
    assert "model_0001.pth" in text and "classifier.bias" in text and "NaN" in text
    assert "model_0000.pth" in text and "last_checkpoint" in text  # how to continue


# --- 5. a full disk --------------------------------------------------------------------------------------------


def _fsync_disk_full(fd):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _torch_short_write(obj, f, *args, **kwargs):
    f.write(b"partial")
    raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")


@pytest.mark.parametrize("inject", ["fsync", "torch"])
def test_a_full_disk_names_the_file_and_the_space_and_loses_nothing(tmp_path, monkeypatch, inject):
    model, opt, ckpt = _trained(tmp_path)
    ckpt.save("model_0000", iteration=0)
    before = (tmp_path / "model_0000.pth").read_bytes()
    if inject == "fsync":
        monkeypatch.setattr(os, "fsync", _fsync_disk_full)
    else:
        monkeypatch.setattr(torch, "save", _torch_short_write)
    for name in ("model_0001", "model_0000"):
        with pytest.raises(OSError) as info:
            ckpt.save(name, iteration=1)
        last_line = str(info.value).strip().splitlines()[-1]
        target = str(tmp_path / f"{name}.pth")
        assert f"No space left on device writing {target} (" in last_line, last_line
        assert " MB needed, " in last_line and " MB free)" in last_line
        assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000.pth"]  # no temporary left
    assert (tmp_path / "model_0000.pth").read_bytes() == before
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000.pth"


def test_the_space_needed_is_the_size_of_the_tensors(tmp_path, monkeypatch):
    model = nn.Linear(1024, 1024)  # 4 MB of weights
    monkeypatch.setattr(torch, "save", _torch_short_write)
    with pytest.raises(OSError, match=r"\(4\.\d MB needed, [\d.]+ MB free\)"):
        Checkpointer(model, str(tmp_path), save_to_disk=True, save_rng=False).save("big")


def test_other_write_errors_are_not_called_a_full_disk(tmp_path):
    def fails(f):
        raise OSError(errno.EIO, "Input/output error")

    with pytest.raises(OSError, match="Input/output error") as info:
        atomic_write(str(tmp_path / "x"), fails)
    assert "No space left" not in str(info.value)


# --- 6. another architecture's weights -------------------------------------------------------------------------


def _reid_cfg(depth="18x", num_classes=4):
    cfg = get_cfg()
    cfg.merge_from_list([
        "MODEL.BACKBONE.DEPTH", depth, "MODEL.BACKBONE.PRETRAIN", False, "MODEL.BACKBONE.FEAT_DIM", 512,
        "MODEL.HEADS.NUM_CLASSES", num_classes, "MODEL.DEVICE", "cpu",
    ])
    return cfg


def _refusals(model, path):
    """The ValueError texts of both ways of loading ``path`` as a model's weights (training and inference);
    each must refuse it."""
    texts = []
    for load in (lambda: Checkpointer(model).resume_or_load(path, resume=False),
                 lambda: load_inference_weights(model, path)):
        with pytest.raises(ValueError) as info:
            load()
        texts.append(str(info.value))
    return texts


def test_a_torchvision_backbone_file_given_as_model_weights_is_refused_not_half_loaded(tmp_path, caplog):
    # The bare network's keys are recognised (the backbone's prefix is added), but the file has no head: the
    # model is not left half-initialised without a word.
    torchvision = pytest.importorskip("torchvision")
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "resnet18-tv.pth")
    for text in _refusals(build_model(_reid_cfg()), str(tmp_path / "resnet18-tv.pth")):
        assert "resnet18-tv.pth" in text and "MODEL.WEIGHTS_PARTIAL" in text
        assert "4 are missing from the file" in text
        # The table of what matched, by module: the backbone loaded, the head's neck missing, fc unused.
        rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
        assert rows["backbone.layer1"].split("|")[2].strip() == "20"
        assert rows["heads.bottleneck"].split("|")[3].strip() == "4"
        assert rows["fc"].split("|")[5].strip() == "2"


def test_a_state_dict_that_matches_nothing_is_refused(tmp_path):
    torch.save({"encoder.stem.weight": torch.zeros(8, 3, 3, 3), "decoder.out.bias": torch.zeros(8)},
               tmp_path / "other.pth")
    for text in _refusals(build_model(_reid_cfg()), str(tmp_path / "other.pth")):
        assert "other.pth" in text and "MODEL.WEIGHTS_PARTIAL" in text and "no tensor" in text.lower()


def test_a_resnet34_checkpoint_is_not_half_loaded_into_a_resnet18_nor_the_reverse(tmp_path, caplog):
    r34 = build_model(_reid_cfg("34x"))
    Checkpointer(r34, str(tmp_path), save_to_disk=True).save("r34")
    r18 = build_model(_reid_cfg("18x"))
    Checkpointer(r18, str(tmp_path), save_to_disk=True).save("r18")
    # R18's tensors are a subset of R34's: one way half the file is dropped, the other half the model is left out.
    for model, other in ((r18, "r34.pth"), (r34, "r18.pth")):
        with pytest.raises(ValueError) as info:
            Checkpointer(model).resume_or_load(str(tmp_path / other), resume=False)
        text = str(info.value)
        assert other in text and "MODEL.WEIGHTS_PARTIAL" in text and "backbone.layer3" in text and "loaded" in text

    # Asked for explicitly, the partial load goes ahead with the tables as warnings.
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        Checkpointer(r18, partial=True).resume_or_load(str(tmp_path / "r34.pth"), resume=False)
    assert any("not used by the model" in m and "backbone.layer3.2.conv1.weight" in m for m in _messages(caplog))


def test_fine_tuning_with_another_classifier_is_one_info_line(tmp_path, caplog):
    Checkpointer(build_model(_reid_cfg(num_classes=4)), str(tmp_path), save_to_disk=True).save("m")
    model = build_model(_reid_cfg(num_classes=9))
    with caplog.at_level(logging.INFO, logger="fastreid.utils.checkpoint"):
        Checkpointer(model).resume_or_load(str(tmp_path / "m.pth"), resume=False)
    assert _messages(caplog) == []
    lines = [m for m in _messages(caplog, logging.INFO) if "not loaded" in m]
    assert len(lines) == 1 and "\n" not in lines[0] and "heads.classifier.weight" in lines[0]


# --- 7. files that are not checkpoints -------------------------------------------------------------------------


@pytest.mark.parametrize("content,found", [
    (bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), "binary data"),
    (b"<!DOCTYPE html><html><body>Sign in</body></html>", "HTML"),
    (b"", "empty"),
])
def test_a_file_that_is_not_a_checkpoint_is_named_without_unsafe_advice(tmp_path, content, found):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        load_inference_weights(_Net(), str(path))
    chain = _exception_chain_text(info.value)
    assert f"{path} is not a PyTorch checkpoint" in str(info.value) and found in str(info.value)
    assert "weights_only=False" not in chain and "weights_only` set to `False" not in chain
    assert "file an issue" not in chain.lower()


def _exception_chain_text(error):
    """What a traceback of ``error`` shows: it and the exceptions it was raised from (not suppressed ones)."""
    texts = []
    while error is not None:
        texts.append(str(error))
        error = error.__cause__ if error.__cause__ is not None or error.__suppress_context__ else error.__context__
    return "\n".join(texts)


# --- 8. leftovers of interrupted saves -------------------------------------------------------------------------


def _dead_pid():
    try:  # above the kernel's largest process id: no process has it
        return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    except OSError:
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        child.wait()
        return child.pid


def _temp_name(target, pid, host=None):
    return f".{target}.{pid}@{host or socket.gethostname()}-0123abcd.tmp"


def test_stale_temporaries_of_this_host_are_removed_and_nothing_else(tmp_path, caplog):
    import fcntl

    dead = _dead_pid()
    stale = [_temp_name("model_0001.pth", dead), _temp_name("last_checkpoint", dead)]
    kept = [
        _temp_name("model_0002.pth", os.getpid()),  # a live writer (this process)
        _temp_name("model_0003.pth", dead, host="another-host"),  # cannot be checked from here
        f".model_0004.pth.{dead}-0123abcd.tmp",  # an older version's name: not provably ours
        "notes.tmp", "model_0005.pth", ".model_0006.pth.tmp",
    ]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"x" * 1000)
    locked = tmp_path / _temp_name("model_0007.pth", dead)  # a dead pid, but someone holds its lock
    locked.write_bytes(b"x")
    kept.append(locked.name)
    with open(locked, "rb") as holder, caplog.at_level(logging.INFO):
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        Checkpointer(_Net(), str(tmp_path), save_to_disk=True)
    assert sorted(os.listdir(tmp_path)) == sorted(kept)
    lines = [m for m in _messages(caplog, logging.INFO) if "temporar" in m]
    assert len(lines) == 1 and "2 " in lines[0] and "MB" in lines[0]
    # A checkpointer that does not save leaves the folder alone.
    (tmp_path / stale[0]).write_bytes(b"x")
    Checkpointer(_Net(), str(tmp_path), save_to_disk=False)
    assert (tmp_path / stale[0]).exists()


@pytest.mark.slow
def test_the_temporary_of_a_save_killed_mid_write_is_removed_by_the_next_run(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        from fastreid.utils.file_io import atomic_write
        def slow(f):
            f.write(b"x" * 100000); f.flush(); print("writing", flush=True); time.sleep(60)
        atomic_write({str(tmp_path / 'model_0001.pth')!r}, slow)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait()
    leftovers = [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    assert len(leftovers) == 1 and socket.gethostname() in leftovers[0]
    Checkpointer(_Net(), str(tmp_path), save_to_disk=True)
    assert os.listdir(tmp_path) == []


# --- 9a. malicious pickles through every load ------------------------------------------------------------------


class _Evil:
    def __reduce__(self):
        return (os.makedirs, (str(MARKER),))


def _evil_files(folder):
    paths = []
    torch.save({"model": _Net().state_dict(), "x": _Evil()}, folder / "zip.pth")
    torch.save({"model": _Net().state_dict(), "x": _Evil()}, folder / "legacy.pth",
               _use_new_zipfile_serialization=False)
    (folder / "raw.pth").write_bytes(pickle.dumps(_Evil()))
    paths += [folder / "zip.pth", folder / "legacy.pth", folder / "raw.pth"]
    return paths


def test_a_malicious_pickle_never_runs_through_any_load(tmp_path):
    from fastreid.engine import DefaultTrainer

    if MARKER.exists():
        MARKER.rmdir()
    for path in _evil_files(tmp_path):
        loads = [
            lambda: Checkpointer(_Net()).load(str(path)),
            lambda: load_inference_weights(_Net(), str(path)),
            lambda: Checkpointer(_Net()).resume_or_load(str(path), resume=False),
        ]
        for load in loads:
            with pytest.raises(ValueError) as info:
                load()
            assert str(path) in str(info.value)
            assert "weights_only=False" not in _exception_chain_text(info.value)
        assert not MARKER.exists()
    # --eval-only: DefaultTrainer.test_weights
    cfg = tiny_cfg(str(tmp_path / "data"), str(tmp_path / "out"), ["MODEL.WEIGHTS", str(tmp_path / "zip.pth")])
    with pytest.raises(ValueError, match="Python objects"):
        DefaultTrainer.test_weights(cfg)
    assert not MARKER.exists()


def test_a_pickle_of_python_objects_says_what_it_holds_and_how_to_convert(tmp_path):
    path = _evil_files(tmp_path)[0]
    with pytest.raises(ValueError) as info:
        Checkpointer(_Net()).load(str(path))
    text = str(info.value)
    assert "os.makedirs" in text and "Python objects" in text and "torch.save(model.state_dict()" in text
    assert "weights_only=False" not in _exception_chain_text(info.value)


# --- 9b. a malicious or damaged gallery index folder -----------------------------------------------------------


@pytest.fixture()
def index_dir(tmp_path):
    pytest.importorskip("faiss")
    from fastreid.search import GalleryIndex

    folder = tmp_path / "index"
    GalleryIndex.build(np.random.default_rng(0).random((6, 4)), [f"g{i}.jpg" for i in range(6)]).save(str(folder))
    return folder


@pytest.mark.parametrize("name,content,expect", [
    ("index.faiss", pickle.dumps(_Evil()), "not a faiss index"),
    ("index.faiss", b"IxFI" + bytes(range(60)), "damaged"),
    ("index.faiss", None, "damaged"),  # truncated at half its size
    ("paths.json", b"[\"a.jpg\", ", "JSON"),
    ("paths.json", b"{\"__class__\": \"os.system\"}", "list of image paths"),
    ("paths.json", json.dumps(["a.jpg"]).encode(), "6 vectors"),
    ("meta.json", b"\x80\x04not json", "JSON"),
    ("meta.json", json.dumps({"kind": "pickle", "metric": "cosine", "dim": 4}).encode(), "kind"),
    ("meta.json", json.dumps({"kind": "flat", "metric": "cosine", "dim": 7}).encode(), "dimension"),
])
def test_a_bad_index_folder_fails_naming_the_file(index_dir, name, content, expect):
    from fastreid.search import GalleryIndex

    if MARKER.exists():
        MARKER.rmdir()
    path = index_dir / name
    if content is None:
        data = path.read_bytes()
        content = data[: len(data) // 2]
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        GalleryIndex.load(str(index_dir))
    assert str(path) in str(info.value) or (expect == "6 vectors" and str(index_dir) in str(info.value))
    assert expect in str(info.value)
    assert not MARKER.exists()


# --- 9c. last_checkpoint naming a missing or truncated file ----------------------------------------------------


def test_resume_from_a_missing_file_names_it_and_the_way_out(tmp_path):
    model, opt, ckpt = _trained(tmp_path)
    ckpt.save("model_0000", iteration=0)
    (tmp_path / "last_checkpoint").write_text("model_0001.pth")
    with pytest.raises(FileNotFoundError) as info:
        _trained(tmp_path)[2].resume_or_load("", resume=True)
    text = str(info.value)
    assert str(tmp_path / "model_0001.pth") in text
    text = text.replace(str(tmp_path), "<dir>")  # the folder's name holds the test's name
    assert "<dir>/last_checkpoint names, does not exist" in text and "model_0000.pth" in text and "--resume" in text


def test_resume_from_a_truncated_file_names_it_and_the_previous_checkpoint(tmp_path):
    model, opt, ckpt = _trained(tmp_path)
    ckpt.save("model_0000", iteration=0)
    os.utime(tmp_path / "model_0000.pth", (1, 1))  # older than the next one
    ckpt.save("model_0001", iteration=1)
    data = (tmp_path / "model_0001.pth").read_bytes()
    (tmp_path / "model_0001.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError) as info:
        _trained(tmp_path)[2].resume_or_load("", resume=True)
    text = str(info.value)
    assert str(tmp_path / "model_0001.pth") in text
    text = text.replace(str(tmp_path), "<dir>")  # the folder's name holds the test's name
    assert "truncated" in text and "model_0000.pth" in text and "last_checkpoint" in text and "--resume" in text
    # The advice works: naming the previous file resumes from it.
    (tmp_path / "last_checkpoint").write_text("model_0000.pth")
    assert _trained(tmp_path)[2].resume_or_load("", resume=True)["iteration"] == 0


def test_an_empty_last_checkpoint_is_named(tmp_path):
    (tmp_path / "last_checkpoint").write_text("")
    with pytest.raises(FileNotFoundError) as info:
        Checkpointer(_Net(), str(tmp_path)).resume_or_load("", resume=True)
    assert f"{tmp_path / 'last_checkpoint'} is empty" in str(info.value)

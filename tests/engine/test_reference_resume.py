"""--resume from a checkpoint that fast-reid wrote: next epoch, its classifier, the schedule moved along."""
import sys
from pathlib import Path

import torch

from fastreid.engine import DefaultTrainer

sys.path.insert(0, str(Path(__file__).parent))
from trainer_utils import tiny_cfg  # noqa: E402


def _fast_reid_state(model, cfg):
    """The model's weights as fast-reid names them: ``heads.weight``, plus its pixel statistics buffers."""
    state = {("heads.weight" if k == "heads.classifier.weight" else k): v for k, v in model.state_dict().items()}
    state["pixel_mean"] = torch.tensor(cfg.MODEL.PIXEL_MEAN).view(1, -1, 1, 1)
    state["pixel_std"] = torch.tensor(cfg.MODEL.PIXEL_STD).view(1, -1, 1, 1)
    return state


def test_a_fast_reid_checkpoint_resumes_at_its_next_epoch_with_its_classifier(tmp_path):
    out = tmp_path / "out"
    cfg = tiny_cfg(str(tmp_path / "data"), str(out), ["SOLVER.MAX_EPOCH", "3", "SOLVER.WARMUP_ITERS", "4"])
    torch.manual_seed(1)
    theirs = DefaultTrainer(cfg)  # stands for the model fast-reid trained for one epoch
    torch.save({"model": _fast_reid_state(theirs.model, theirs.cfg), "optimizer": {"state": {}}, "epoch": 0,
                "metric": 42.0}, out / "model_0000.pth")
    (out / "last_checkpoint").write_text("model_0000.pth")

    resumed = DefaultTrainer(cfg)
    resumed.resume_or_load(resume=True)
    epoch_length = resumed.iters_per_epoch
    assert (resumed.start_epoch, resumed.start_iter) == (1, epoch_length)
    for key, value in theirs.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key

    straight = DefaultTrainer(cfg)
    for _ in range(epoch_length):
        straight.optimizer.step()
        straight.scheduler.step()
    assert [g["lr"] for g in resumed.optimizer.param_groups] == [g["lr"] for g in straight.optimizer.param_groups]
    assert resumed.optimizer.param_groups[0]["lr"] != theirs.optimizer.param_groups[0]["lr"]  # past the warmup
    resumed.max_epoch = 2
    resumed.train()  # one epoch more, from there
    assert torch.load(out / "model_final.pth", weights_only=True)["iteration"] == 2 * epoch_length - 1

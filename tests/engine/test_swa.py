import torch
from torch import nn

from fastreid.engine.swa import SWA
from fastreid.engine.train_loop import SimpleTrainer
from fastreid.engine.hooks import CallbackHook


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 1)

    def forward(self, batch):
        return {"loss_mse": ((self.fc(batch["x"]) - batch["y"]) ** 2).mean()}


def _data():
    g = torch.Generator().manual_seed(0)
    while True:
        yield {"x": torch.randn(4, 3, generator=g), "y": torch.randn(4, 1, generator=g)}


def test_swa_replaces_weights_by_the_mean_of_its_snapshots_and_cycles_the_lr():
    torch.manual_seed(0)
    model = _Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = SimpleTrainer(model, _data(), optimizer)
    snapshots, lrs, bn_updates = {}, {}, []
    swa = SWA(model, swa_iters=6, period=2, lr_factor=2.0, eta_min_lr=0.01, lr_sched=True,
              update_bn=lambda: bn_updates.append(trainer.iter))
    def record_step(t):
        lrs[t.iter] = optimizer.param_groups[0]["lr"]  # the rate the step just used
        snapshots[t.iter] = [p.detach().clone() for p in model.parameters()]

    record = CallbackHook(after_step=record_step)
    trainer.register_hooks([record, swa])
    trainer.train(0, 5, 2)  # 10 iterations: the window is iterations 4..9, snapshots after 5, 7, 9

    expected = [torch.stack([snapshots[i][k] for i in (5, 7, 9)]).mean(0) for k in range(2)]
    for param, mean in zip(model.parameters(), expected):
        torch.testing.assert_close(param.detach(), mean)
    assert bn_updates == [9]
    assert [lrs[i] for i in range(4)] == [0.1] * 4
    assert lrs[4] == lrs[6] == lrs[8] == 0.2
    assert lrs[5] == lrs[7] == lrs[9] == 0.01 + (0.2 - 0.01) / 2

"""Tests for fastreid.utils.events: storage semantics and the three writers."""

import json
import logging

import pytest
import torch

from fastreid.utils import events
from fastreid.utils.events import (
    CommonMetricPrinter,
    EventStorage,
    JSONWriter,
    TensorboardXWriter,
    get_event_storage,
)


def test_get_event_storage_requires_context():
    with pytest.raises(RuntimeError, match="EventStorage"):
        get_event_storage()
    with EventStorage() as outer:
        assert get_event_storage() is outer
        with EventStorage() as inner:
            assert get_event_storage() is inner
        assert get_event_storage() is outer


def test_history_median_avg_and_latest():
    with EventStorage(start_iter=5) as storage:
        for value in [1.0, 2.0, 9.0, torch.tensor(4.0)]:
            storage.put_scalar("loss", value)
            storage.step()
        storage.put_scalar("lr", 0.1, smoothing_hint=False)
        hist = storage.history("loss")
        assert hist.values() == [(1.0, 5), (2.0, 6), (9.0, 7), (4.0, 8)]
        assert hist.median(3) == 4.0
        assert hist.avg(4) == pytest.approx(4.0)
        assert hist.global_avg() == pytest.approx(4.0)
        assert storage.latest() == {"loss": (4.0, 8), "lr": (0.1, 9)}
        assert storage.iter == 9 and not hasattr(storage, "iteration")  # one accessor of the iteration
        assert storage.smoothing_hints() == {"loss": True, "lr": False}
        assert set(storage.histories()) == {"loss", "lr"}
        with pytest.raises(KeyError):
            storage.history("missing")


def test_latest_with_smoothing_hint():
    with EventStorage() as storage:
        for v in [10.0, 1.0, 2.0, 3.0]:
            storage.put_scalars(loss=v, lr=v, accuracy=v)  # lr hint False below
            storage.step()
        with pytest.raises(ValueError, match="smoothing_hint"):
            storage.put_scalar("lr", 1.0, smoothing_hint=False)
        latest = storage.latest_with_smoothing_hint(window_size=3)
        assert latest["loss"] == (2.0, 3)  # median of 1, 2, 3
        storage.put_scalar("raw", 7.0, smoothing_hint=False)
        storage.put_scalar("raw", 8.0, smoothing_hint=False)
        assert storage.latest_with_smoothing_hint(window_size=3)["raw"] == (8.0, 4)


def test_name_scope_prefix_and_iter_setter():
    with EventStorage() as storage:
        with storage.name_scope("val"):
            storage.put_scalar("acc", 0.5)
            with storage.name_scope("market/"):
                storage.put_scalar("mAP", 0.3)
        storage.put_scalar("acc", 0.9)
        storage.iter = 42
        storage.put_scalar("late", 1.0)
        assert storage.latest() == {"val/acc": (0.5, 0), "val/market/mAP": (0.3, 0), "acc": (0.9, 0), "late": (1.0, 42)}


def test_rejects_multi_element_tensor():
    with EventStorage() as storage:
        with pytest.raises(ValueError):
            storage.put_scalar("loss", torch.ones(2))


def _run_iterations(storage, start, stop):
    for it in range(start, stop):
        storage.iter = it
        storage.put_scalars(loss_cls=float(it), time=0.5)
        storage.put_scalar("lr", 0.01 * it, smoothing_hint=False)


def test_json_writer_writes_new_values_once(tmp_path):
    path = tmp_path / "metrics.json"
    writer = JSONWriter(str(path), window_size=2)
    with EventStorage() as storage:
        _run_iterations(storage, 0, 3)
        writer.write()
        writer.write()  # nothing new: must not repeat the line
        _run_iterations(storage, 3, 5)
        storage.put_scalar("lr", 1.0, smoothing_hint=False)  # iteration 4 again
        writer.write()
    writer.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [
        {"iteration": 2, "loss_cls": 1.5, "lr": pytest.approx(0.02), "time": 0.5},
        {"iteration": 4, "loss_cls": 3.5, "lr": 1.0, "time": 0.5},
    ]


def test_tensorboard_writer_roundtrip(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    writer = TensorboardXWriter(str(tmp_path), window_size=1)
    with EventStorage() as storage:
        _run_iterations(storage, 0, 2)
        storage.put_image("sample", torch.rand(3, 8, 4))
        storage.put_histogram("weights", torch.arange(10.0), bins=5)
        writer.write()
        writer.write()
        _run_iterations(storage, 2, 4)
        writer.write()
        assert storage._vis_data == [] and storage._histograms == []
    writer.close()

    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    loss = acc.Scalars("loss_cls")
    assert [(e.step, e.value) for e in loss] == [(1, 1.0), (3, 3.0)]
    assert [e.step for e in acc.Scalars("lr")] == [1, 3]
    assert acc.Scalars("lr")[-1].value == pytest.approx(0.03)
    assert len(acc.Images("sample")) == 1
    hist = acc.Histograms("weights")[0].histogram_value
    assert (hist.min, hist.max, hist.num, hist.sum) == (0.0, 9.0, 10, 45.0)


@pytest.fixture
def events_log(caplog):
    # Attach to the module logger directly: a setup_logger() call elsewhere in
    # the session may have turned off propagation of the "fastreid" logger.
    # Propagation is turned off meanwhile so root's capture does not record twice.
    log = logging.getLogger(events.__name__)
    old_level, old_propagate = log.level, log.propagate
    log.addHandler(caplog.handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    yield caplog
    log.removeHandler(caplog.handler)
    log.setLevel(old_level)
    log.propagate = old_propagate


def test_common_metric_printer(events_log):
    printer = CommonMetricPrinter(max_iter=100, window_size=4)
    with EventStorage(start_iter=9) as storage:
        storage.put_scalars(loss_cls=1.25, loss_triplet=0.5, time=2.0, data_time=0.1, accuracy=0.9)
        storage.put_scalar("lr", 3e-4, smoothing_hint=False)
        printer.write()
        assert storage.history("eta_seconds").latest() == pytest.approx(180.0)
    line = events_log.records[-1].getMessage()
    assert "eta: 0:03:00" in line
    assert "iter: 9" in line
    assert "loss_cls: 1.25" in line and "loss_triplet: 0.5" in line
    assert "accuracy" not in line
    assert "time: 2.0000" in line and "data_time: 0.1000" in line
    assert "lr: 0.0003" in line
    assert "max_mem" in line if torch.cuda.is_available() else "max_rss" in line


def test_common_metric_printer_eta_without_time(events_log):
    printer = CommonMetricPrinter(max_iter=10)
    with EventStorage() as storage:
        storage.put_scalar("loss", 1.0)
        printer.write()  # no "time" history and no previous write: no ETA yet
        storage.iter = 5
        printer.write()
    assert len(events_log.records) == 2
    first, second = (r.getMessage() for r in events_log.records)
    assert "eta" not in first and "iter: 0" in first
    assert "eta: 0:00:00" in second and "iter: 5" in second


def test_common_metric_printer_says_each_iteration_once(events_log):
    printer = CommonMetricPrinter(max_iter=10)
    with EventStorage() as storage:
        storage.put_scalar("loss", 1.0)
        printer.write()
        printer.write()  # the end-of-training write after the last epoch's
        storage.iter = 1
        printer.write()
    assert [r.getMessage().count("iter: ") for r in events_log.records] == [1, 1]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_scalars_are_converted_on_read():
    with EventStorage() as storage:
        loss = torch.tensor(2.0, device="cuda")
        storage.put_scalar("loss", loss)
        loss += 1  # in-place update after put must not change the stored value
        storage.put_scalar("loss", 5.0)
        assert storage.history("loss").values() == [(2.0, 0), (5.0, 0)]

"""FastAttr's metrics against a brute-force reference written out by hand, and the evaluator's accumulation."""
import pytest
import torch

from fastreid.config import get_cfg


def _reference(probs, labels, threshold):
    """mA and instance metrics with plain loops over images and attributes (0/0 counted as 0)."""
    def ratio(a, b):
        return a / b if b else 0.0

    n, a = len(probs), len(probs[0])
    pred = [[probs[i][j] >= threshold for j in range(a)] for i in range(n)]
    gt = [[labels[i][j] == 1 for j in range(a)] for i in range(n)]
    per_attr = []
    for j in range(a):
        tp = sum(pred[i][j] and gt[i][j] for i in range(n))
        tn = sum(not pred[i][j] and not gt[i][j] for i in range(n))
        pos = sum(gt[i][j] for i in range(n))
        per_attr.append((ratio(tp, pos) + ratio(tn, n - pos)) / 2)
    accu = prec = rec = 0.0
    for i in range(n):
        inter = sum(pred[i][j] and gt[i][j] for j in range(a))
        union = sum(pred[i][j] or gt[i][j] for j in range(a))
        accu += ratio(inter, union) / n
        prec += ratio(inter, sum(pred[i])) / n
        rec += ratio(inter, sum(gt[i])) / n
    return {"Accu": 100 * accu, "Prec": 100 * prec, "Recall": 100 * rec,
            "F1": 100 * ratio(2 * prec * rec, prec + rec), "mA": 100 * sum(per_attr) / a}


def test_metrics_of_a_case_worked_by_hand():
    from fast_attr import attribute_metrics

    # 3 images x 2 attributes; thresholded predictions [[1,0],[1,1],[0,0]] against labels [[1,1],[0,1],[0,0]].
    probs = torch.tensor([[0.9, 0.2], [0.5, 0.7], [0.1, 0.4]])
    labels = torch.tensor([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
    # attribute 0: TPR 1/1, TNR 1/2; attribute 1: TPR 1/2, TNR 1/1 -> mA 0.75.
    # images: inter/union 1/2, 1/2, 0/0; inter/pred 1/1, 1/2, 0/0; inter/gt 1/2, 1/1, 0/0.
    result = attribute_metrics(probs, labels, threshold=0.5)
    assert result["mA"] == pytest.approx(75.0)
    assert result["Accu"] == pytest.approx(100 / 3)
    assert result["Prec"] == pytest.approx(50.0) and result["Recall"] == pytest.approx(50.0)
    assert result["F1"] == pytest.approx(50.0) and result["metric"] == result["mA"]


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.8])
def test_metrics_equal_the_brute_force_reference(threshold):
    from fast_attr import attribute_metrics

    gen = torch.Generator().manual_seed(int(threshold * 10))
    probs = torch.rand(23, 7, generator=gen)
    labels = (torch.rand(23, 7, generator=gen) < 0.35).float()
    labels[:, 6] = 0  # an attribute that never occurs: its TPR counts as 0
    expected = _reference(probs.tolist(), labels.int().tolist(), threshold)
    result = attribute_metrics(probs, labels, threshold)
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=1e-9), key


def test_evaluator_accumulates_batches_and_reads_the_threshold_key():
    from fast_attr import AttrEvaluator, add_attr_config, attribute_metrics

    cfg = get_cfg()
    add_attr_config(cfg)
    cfg.TEST.THRES = 0.6
    evaluator = AttrEvaluator(cfg, attribute_names=["a", "b", "c"])
    assert evaluator.threshold == 0.6
    gen = torch.Generator().manual_seed(3)
    probs, labels = torch.rand(10, 3, generator=gen), (torch.rand(10, 3, generator=gen) > 0.5).float()
    evaluator.reset()
    for lo in range(0, 10, 4):
        evaluator.process({"targets": labels[lo:lo + 4]}, probs[lo:lo + 4])
    assert evaluator.evaluate() == attribute_metrics(probs, labels, 0.6)
    with pytest.raises(ValueError, match="N×A"):
        attribute_metrics(probs[:, :2], labels, 0.5)

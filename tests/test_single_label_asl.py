"""Single-label ASL (appendix H) as an MMPretrain loss, its example configs and the macro-F1 metric."""
import glob
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmdet_asl.models.classification  # noqa: F401
from mmpretrain.evaluation import SingleLabelMetric
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'single_label', '*.py')))


def _by_hand(logits, label, gp, gn, clip=0.0):
    p = [math.exp(v) for v in logits]
    s = sum(p)
    p = [v / s for v in p]
    total = 0.0
    for c, pc in enumerate(p):
        if c == label:
            total += -((1 - pc) ** gp) * math.log(pc)
        else:
            pm = max(pc - clip, 0.0)
            total += -(pm ** gn) * math.log(1 - pm)
    return total


def test_registered_and_matches_hand_computation():
    loss = MODELS.build(dict(type='AsymmetricLossSingleLabel', gamma_pos=0.0, gamma_neg=4.0))
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]], dtype=torch.float64)
    labels = torch.tensor([0, 1])
    expected = [_by_hand(logits[i].tolist(), int(labels[i]), 0.0, 4.0) for i in range(2)]
    out = loss(logits, labels, reduction_override='none')
    torch.testing.assert_close(out, torch.tensor(expected, dtype=out.dtype), rtol=1e-6, atol=1e-8)
    assert loss(logits, labels, avg_factor=2).item() == pytest.approx(sum(expected) / 2, rel=1e-6)
    assert loss(logits, labels).item() == pytest.approx(sum(expected) / 2, rel=1e-6)
    assert loss(logits, labels, weight=torch.tensor([1.0, 0.0]), reduction_override='sum').item() == \
        pytest.approx(expected[0], rel=1e-6)
    focal = MODELS.build(dict(type='AsymmetricLossSingleLabel', gamma_pos=2.0, gamma_neg=2.0, clip=0.05))
    assert focal(logits, labels, reduction_override='sum').item() == pytest.approx(
        sum(_by_hand(logits[i].tolist(), int(labels[i]), 2.0, 2.0, 0.05) for i in range(2)), rel=1e-6)


def test_gradient_and_bad_inputs():
    loss = MODELS.build(dict(type='AsymmetricLossSingleLabel'))
    logits = torch.randn(4, 5, requires_grad=True)
    loss(logits, torch.tensor([0, 1, 2, 3]), avg_factor=4).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='soft targets'):
        loss(logits, torch.rand(4, 5))
    with pytest.raises(ValueError, match='reduction'):
        MODELS.build(dict(type='AsymmetricLossSingleLabel', reduction='avg'))
    with pytest.raises(ValueError, match='gamma_neg'):
        MODELS.build(dict(type='AsymmetricLossSingleLabel', gamma_neg=-1.0))


def test_in_a_linear_cls_head():
    head = MODELS.build(dict(type='LinearClsHead', num_classes=5, in_channels=8,
                             loss=dict(type='AsymmetricLossSingleLabel', gamma_pos=0.0, gamma_neg=4.0)))
    samples = [DataSample().set_gt_label(i) for i in (0, 3, 4)]
    out = head.loss((torch.randn(3, 8), ), samples)
    assert torch.isfinite(out['loss'])
    out['loss'].backward()
    assert head.fc.weight.grad.abs().sum() > 0


def test_macro_f1_is_the_mean_of_per_class_f1():
    # per class (pred vs true): c0 TP1 FP1 FN0 -> F1 2/3; c1 TP1 FP0 FN1 -> 2/3; c2 TP1 -> 1
    pred = torch.tensor([0, 0, 1, 2])
    true = torch.tensor([0, 1, 1, 2])
    _, _, f1, _ = SingleLabelMetric.calculate(pred, true, num_classes=3, average='macro')
    assert f1.item() == pytest.approx((2 / 3 + 2 / 3 + 1) / 3 * 100, abs=1e-4)


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds(path):
    cfg = Config.fromfile(path)
    init_default_scope('mmpretrain')
    assert cfg.model.head.loss.type == 'AsymmetricLossSingleLabel'
    assert cfg.model.backbone.init_cfg is None  # nothing downloads
    assert any(e.type == 'SingleLabelMetric' and e.average == 'macro' and 'f1-score' in e['items']
               for e in cfg.val_evaluator)
    model = MODELS.build(cfg.model)
    assert type(model.head.loss_module).__name__ == 'AsymmetricLossSingleLabel'
    expected = (0.0, 4.0) if '_asl-sl_' in path else (2.0, 2.0)
    assert (model.head.loss_module.gamma_pos, model.head.loss_module.gamma_neg) == expected

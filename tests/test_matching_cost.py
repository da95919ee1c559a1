"""AsymmetricFocalLossCost against MMDetection's FocalLossCost, a float64 hand formula, and inside a
HungarianAssigner built from a config."""
import math

import pytest
import torch
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment

from mmdet.models.task_modules.assigners.match_cost import FocalLossCost
from mmdet.registry import TASK_UTILS

from mmdet_asl.models import AsymmetricFocalLossCost

Q, C, G = 7, 5, 3
F64 = dict(dtype=torch.float64)


def scores_and_labels(seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(Q, C, generator=g, **F64) * 3
    labels = torch.tensor([0, 3, 3])
    return InstanceData(scores=logits), InstanceData(labels=labels)


def masks(seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    pred = InstanceData(masks=torch.randn(Q, 6, 5, generator=g, dtype=dtype) * 3)
    gt = InstanceData(masks=(torch.rand(G, 6, 5, generator=g) > 0.5).long())
    return pred, gt


@pytest.mark.parametrize('binary_input', [False, True])
@pytest.mark.parametrize('alpha,gamma,weight,eps', [(0.25, 2.0, 1.0, 1e-12), (0.5, 1.5, 2.0, 1e-8),
                                                    (0.9, 0.0, 3.0, 0.0)])
def test_equals_focal_loss_cost(binary_input, alpha, gamma, weight, eps):
    # FocalLossCost's mask form takes float32 masks only.
    pred, gt = masks(dtype=torch.float32) if binary_input else scores_and_labels()
    ours = AsymmetricFocalLossCost(gamma_pos=gamma, gamma_neg=gamma, clip=0.0, alpha=alpha, eps=eps, weight=weight,
                                   binary_input=binary_input)
    theirs = FocalLossCost(alpha=alpha, gamma=gamma, eps=eps, weight=weight, binary_input=binary_input)
    torch.testing.assert_close(ours(pred, gt), theirs(pred, gt), rtol=0, atol=0)


def test_defaults_are_focal_loss_cost_and_gamma_sets_both_sides():
    pred, gt = scores_and_labels(1)
    torch.testing.assert_close(AsymmetricFocalLossCost()(pred, gt), FocalLossCost()(pred, gt), rtol=0, atol=0)
    cost = TASK_UTILS.build(dict(type='AsymmetricFocalLossCost', gamma=1.0, gamma_neg=4.0))
    assert isinstance(cost, FocalLossCost) and (cost.gamma_pos, cost.gamma_neg) == (1.0, 4.0)


def hand_costs(x, gamma_pos, gamma_neg, clip, alpha, eps):
    p = 1 / (1 + math.exp(-x))
    p_m = max(p - clip, 0.0)
    pos = -math.log(p + eps) * alpha * (1 - p)**gamma_pos
    neg = -math.log(1 - p_m + eps) * (1 - alpha) * p_m**gamma_neg
    return pos, neg


ASYM = dict(gamma_pos=1.0, gamma_neg=4.0, clip=0.1, alpha=0.3, eps=1e-9, weight=2.0)


def test_asymmetric_cost_against_hand_formula():
    pred, gt = scores_and_labels(2)
    got = AsymmetricFocalLossCost(**ASYM)(pred, gt)
    a = {k: v for k, v in ASYM.items() if k != 'weight'}
    expected = torch.tensor([[(lambda c: c[0] - c[1])(hand_costs(pred.scores[q, gt.labels[j]].item(), **a)) * 2.0
                              for j in range(G)] for q in range(Q)], **F64)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-15)
    # The margin: below p = m a negative costs nothing, so a query's cost is its positive term only.
    low = InstanceData(scores=torch.full((1, C), math.log(0.05 / 0.95), **F64))
    pos, _ = hand_costs(math.log(0.05 / 0.95), **a)
    assert AsymmetricFocalLossCost(**ASYM)(low, gt)[0, 0].item() == pytest.approx(pos * 2.0, rel=1e-12)


def test_asymmetric_mask_cost_against_hand_formula():
    pred, gt = masks(3)
    got = AsymmetricFocalLossCost(binary_input=True, **ASYM)(pred, gt)
    a = {k: v for k, v in ASYM.items() if k != 'weight'}
    x, t = pred.masks.flatten(1), gt.masks.flatten(1)
    expected = torch.zeros(Q, G, **F64)
    for q in range(Q):
        for j in range(G):
            costs = [hand_costs(x[q, k].item(), **a) for k in range(x.shape[1])]
            expected[q, j] = sum(c[0] if t[j, k] else c[1] for k, c in enumerate(costs)) / x.shape[1] * 2.0
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-15)


def hungarian(cls_cost):
    return dict(type='HungarianAssigner', match_costs=[
        cls_cost, dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'), dict(type='IoUCost', iou_mode='giou',
                                                                              weight=2.0)])


def boxes(n, g):
    xy = torch.rand(n, 2, generator=g) * 60
    return torch.cat([xy, xy + 8 + torch.rand(n, 2, generator=g) * 30], 1)


def test_in_hungarian_assigner_from_config():
    g = torch.Generator().manual_seed(4)
    pred = InstanceData(scores=torch.randn(Q, C, generator=g) * 3, bboxes=boxes(Q, g))
    gt = InstanceData(labels=torch.tensor([0, 3, 1]), bboxes=boxes(G, g))
    meta = dict(img_shape=(100, 100))
    focal = TASK_UTILS.build(hungarian(dict(type='FocalLossCost', weight=2.0))).assign(pred, gt, img_meta=meta)
    same = TASK_UTILS.build(hungarian(dict(type='AsymmetricFocalLossCost', weight=2.0))).assign(pred, gt,
                                                                                                 img_meta=meta)
    assert torch.equal(same.gt_inds, focal.gt_inds) and torch.equal(same.labels, focal.labels)
    # With the asymmetry, the assignment is the optimum of the summed costs (scipy on the hand-built matrix).
    asym = TASK_UTILS.build(hungarian(dict(type='AsymmetricFocalLossCost', **ASYM))).assign(pred, gt, img_meta=meta)
    costs = [TASK_UTILS.build(c) for c in hungarian(dict(type='AsymmetricFocalLossCost', **ASYM))['match_costs']]
    total = sum(c(pred, gt, img_meta=meta) for c in costs)
    rows, cols = linear_sum_assignment(total.numpy())
    expected = torch.zeros(Q, dtype=torch.long)
    expected[torch.as_tensor(rows)] = torch.as_tensor(cols) + 1
    assert torch.equal(asym.gt_inds, expected)
    assert (asym.gt_inds > 0).sum() == G


@pytest.mark.parametrize('kwargs,match', [(dict(gamma_neg=-1.0), 'gamma_neg'), (dict(gamma_pos='2'), 'gamma_pos'),
                                          (dict(clip=1.0), 'clip'), (dict(alpha=1.5), 'alpha'),
                                          (dict(eps=-1e-12), 'eps'), (dict(binary_input=1), 'binary_input'),
                                          (dict(gamma=float('inf')), 'gamma')])
def test_bad_config(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        AsymmetricFocalLossCost(**kwargs)


def test_bad_inputs():
    pred, gt = scores_and_labels()
    with pytest.raises(ValueError, match='gt_instances.labels must be in \\[0, 4\\]'):
        AsymmetricFocalLossCost()(pred, InstanceData(labels=torch.tensor([5])))
    pm, gm = masks()
    with pytest.raises(ValueError, match='same number of pixels'):
        AsymmetricFocalLossCost(binary_input=True)(pm, InstanceData(masks=gm.masks[:, :3]))

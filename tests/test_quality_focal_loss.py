"""AsymmetricQualityFocalLoss and AsymmetricVarifocalLoss against MMDetection's QualityFocalLoss / VarifocalLoss
(values and gradients, as functions and inside real GFL, RTMDet, TOOD and VFNet heads), against ASL's L+ and
L- (Eq. 7) and against float64 hand formulas."""
import math

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.logging import MessageHub
from mmengine.structures import InstanceData

from mmdet.models.losses import QualityFocalLoss, VarifocalLoss
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample

from mmdet_asl.models import AsymmetricQualityFocalLoss, AsymmetricVarifocalLoss
from mmdet_asl.ops.asl.reference import asymmetric_loss_reference

N, C = 9, 4
F64 = dict(dtype=torch.float64)


def logits_and_targets(seed=0, n=N, c=C):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g, **F64) * 3
    labels = torch.randint(0, c + 1, (n, ), generator=g)  # c = background
    labels[:2] = torch.tensor([0, c])
    score = torch.rand(n, generator=g, **F64)
    weight = torch.rand(n, generator=g, **F64)
    dense = torch.rand(n, c, generator=g, **F64) * (torch.rand(n, c, generator=g) < 0.3)
    return logits, labels, score, weight, dense


def value_and_grad(loss, pred, target, **kwargs):
    pred = pred.detach().clone().requires_grad_()
    value = loss(pred, target, **kwargs)
    value.sum().backward()
    return value.detach(), pred.grad


def assert_same(a, b):
    """Equal in value and gradient up to float64 rounding (the same PyTorch functions in another order)."""
    torch.testing.assert_close(a[0], b[0], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(a[1], b[1], rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------------------ QFL equality, three target forms
@pytest.mark.parametrize('beta', [0.0, 1.0, 2.0, 2.5])
@pytest.mark.parametrize('activated', [False, True])
@pytest.mark.parametrize('form', ['tuple', 'dense'])
@pytest.mark.parametrize('reduce', [dict(), dict(avg_factor=3.5), dict(reduction_override='sum'),
                                    dict(reduction_override='none')])
def test_equals_quality_focal_loss(beta, activated, form, reduce):
    logits, labels, score, weight, dense = logits_and_targets()
    pred = torch.sigmoid(logits) if activated else logits
    target = (labels, score) if form == 'tuple' else dense
    ours = AsymmetricQualityFocalLoss(gamma_pos=beta, gamma_neg=beta, clip=0.0, activated=activated,
                                      loss_weight=1.5)
    theirs = QualityFocalLoss(beta=beta, activated=activated, loss_weight=1.5)
    for w in (None, weight):
        assert_same(value_and_grad(ours, pred, target, weight=w, **reduce),
                    value_and_grad(theirs, pred, target, weight=w, **reduce))


def test_builds_from_registry_as_a_quality_focal_loss():
    loss = MODELS.build(dict(type='AsymmetricQualityFocalLoss', use_sigmoid=True, gamma_pos=1.0, gamma_neg=3.0,
                             clip=0.02))
    # DETR-family heads hand (labels, IoU) only to an instance of QualityFocalLoss.
    assert isinstance(loss, QualityFocalLoss)
    assert (loss.gamma_pos, loss.gamma_neg, loss.clip) == (1.0, 3.0, 0.02)
    # The defaults are QFL(beta=2): a config that changes only ``type`` trains as before.
    logits, labels, score, _, _ = logits_and_targets(1)
    assert_same(value_and_grad(AsymmetricQualityFocalLoss(), logits, (labels, score)),
                value_and_grad(QualityFocalLoss(), logits, (labels, score)))


def test_beta_is_the_default_of_both_exponents():
    """QFL's ``beta`` keeps a QFL config valid under the new type; a gamma given overrides its side only."""
    logits, labels, score, _, _ = logits_and_targets(6)
    assert_same(value_and_grad(AsymmetricQualityFocalLoss(beta=3.0), logits, (labels, score)),
                value_and_grad(QualityFocalLoss(beta=3.0), logits, (labels, score)))
    loss = AsymmetricQualityFocalLoss(beta=1.0, gamma_neg=4.0)
    assert (loss.gamma_pos, loss.gamma_neg) == (1.0, 4.0)
    with pytest.raises(ValueError, match='beta'):
        AsymmetricQualityFocalLoss(beta=-2.0)


# ------------------------------------------------------------------------------ against ASL and hand formulas
@pytest.mark.parametrize('gamma_pos', [0.0, 1.0, 2.0])
def test_quality_one_positive_term_is_asl_l_plus(gamma_pos):
    """q = 1: the positive slot costs -(1 - p)^gamma+ log p, ASL's L+ (Eq. 7), whatever gamma- and m."""
    logits = torch.linspace(-12, 12, 41, **F64).reshape(-1, 1)
    loss = AsymmetricQualityFocalLoss(gamma_pos=gamma_pos, gamma_neg=4.0, clip=0.05, reduction='none')
    expected = value_and_grad(lambda x, y: asymmetric_loss_reference(x, y, gamma_pos=gamma_pos, gamma_neg=4.0,
                                                                     clip=0.05).sum(1), logits,
                              torch.ones_like(logits))
    labels = torch.zeros(41, dtype=torch.long)
    assert_same(value_and_grad(loss, logits, (labels, torch.ones(41, **F64))), expected)
    # (N,) integer labels are read as quality 1 (TOOD's initial_loss_cls form).
    assert_same(value_and_grad(loss, logits, labels), expected)
    assert_same(value_and_grad(loss, logits, torch.ones_like(logits)), expected)


def hand_negative(x, gamma_neg, clip):
    """-p_m^gamma- log(1 - p_m), p_m = max(p - m, 0) (ASL, Eq. 5 and 7), in Python floats."""
    p = 1 / (1 + math.exp(-x))
    p_m = max(p - clip, 0.0)
    return -(p_m**gamma_neg) * math.log(1 - p_m)


def hand_positive(x, q, gamma_pos):
    """-|q - p|^gamma+ (q log p + (1 - q) log(1 - p)) (QFL, Eq. 5), in Python floats."""
    p = 1 / (1 + math.exp(-x))
    return -abs(q - p)**gamma_pos * (q * math.log(p) + (1 - q) * math.log(1 - p))


@pytest.mark.parametrize('gamma_pos,gamma_neg,clip', [(2.0, 4.0, 0.05), (1.0, 3.0, 0.2), (0.0, 0.5, 0.1)])
def test_margin_and_gamma_neg_against_hand_formula(gamma_pos, gamma_neg, clip):
    logits, labels, score, weight, _ = logits_and_targets(2)
    loss = AsymmetricQualityFocalLoss(gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip, reduction='none')
    got = loss(logits, (labels, score), weight=weight)
    expected = []
    for i in range(N):
        row = sum(hand_positive(logits[i, j].item(), score[i].item(), gamma_pos) if j == labels[i].item()
                  else hand_negative(logits[i, j].item(), gamma_neg, clip) for j in range(C))
        expected.append(row * weight[i].item())
    torch.testing.assert_close(got, torch.tensor(expected, **F64), rtol=1e-12, atol=1e-15)
    # The margin is a hard threshold: a negative with p <= m costs nothing and gets no gradient.
    below = torch.full((1, C), math.log(clip / (1 - clip)) - 0.5, **F64)
    value, grad = value_and_grad(loss, below, (torch.tensor([C]), torch.zeros(1, **F64)))
    assert value.item() == 0 and grad.abs().max().item() == 0
    # And as L- of ASL (Eq. 7) on every negative slot.
    neg = value_and_grad(loss, logits, (torch.full((N, ), C), score))
    ref = value_and_grad(lambda x, y: asymmetric_loss_reference(x, y, gamma_neg=gamma_neg, clip=clip).sum(1),
                         logits, torch.zeros_like(logits))
    assert_same(neg, ref)


def test_activated_margin_against_hand_formula():
    logits, labels, score, _, _ = logits_and_targets(3)
    loss = AsymmetricQualityFocalLoss(gamma_pos=1.0, gamma_neg=3.0, clip=0.1, activated=True, reduction='sum')
    expected = sum(hand_positive(logits[i, j].item(), score[i].item(), 1.0) if j == labels[i].item()
                   else hand_negative(logits[i, j].item(), 3.0, 0.1) for i in range(N) for j in range(C))
    assert loss(torch.sigmoid(logits), (labels, score)).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize('activated', [False, True])
def test_gamma_below_one_at_zero_probability_has_finite_gradient(activated):
    """0 < gamma < 1 with p = 0 (a logit of -800 in float64): weight * BCE is 0 with zero gradient, not NaN."""
    logits = torch.tensor([[-800.0, 0.0], [3.0, -800.0]], **F64)
    pred = torch.sigmoid(logits) if activated else logits
    loss = AsymmetricQualityFocalLoss(gamma_pos=0.5, gamma_neg=0.5, activated=activated)
    value, grad = value_and_grad(loss, pred, (torch.tensor([1, 2]), torch.tensor([0.5, 0.0], **F64)))
    assert torch.isfinite(value).all() and torch.isfinite(grad).all()
    assert grad[0, 0].item() == 0 and grad[1, 1].item() == 0


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('activated', [False, True])
def test_half_precision_is_finite(dtype, activated):
    logits = torch.linspace(-30, 30, 64).reshape(16, 4)
    pred = (torch.sigmoid(logits) if activated else logits).to(dtype)
    labels = torch.arange(16) % 5
    score = torch.linspace(0, 1, 16)
    loss = AsymmetricQualityFocalLoss(gamma_pos=2.0, gamma_neg=4.0, clip=0.05, activated=activated)
    value, grad = value_and_grad(loss, pred, (labels, score), avg_factor=4.0)
    assert torch.isfinite(value).all() and torch.isfinite(grad).all() and grad.dtype == dtype
    reference = loss(pred.double(), (labels, score.double()), avg_factor=4.0)
    torch.testing.assert_close(value.double(), reference, rtol=2e-2, atol=1e-3)


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize('kwargs,match', [
    (dict(use_sigmoid=False), 'use_sigmoid'),
    (dict(gamma_neg=-1.0), 'gamma_neg'),
    (dict(gamma_pos=float('nan')), 'gamma_pos'),
    (dict(clip=1.0), 'clip'),
    (dict(activated='yes'), 'activated'),
    (dict(reduction='avg'), 'reduction'),
    (dict(loss_weight=-1.0), 'loss_weight'),
])
def test_bad_config(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        AsymmetricQualityFocalLoss(**kwargs)


def test_bad_inputs():
    logits, labels, score, weight, dense = logits_and_targets()
    loss = AsymmetricQualityFocalLoss()
    cases = [
        ((logits, (labels, score[:3])), 'target\\[1\\]'),
        ((logits, (labels.float(), score)), 'labels must be an integer'),
        ((logits, (torch.full((N, ), C + 1), score)), f'labels must be in \\[0, {C}\\]'),
        ((logits, (labels, score, score)), 'target must be a tuple'),
        ((logits, dense[:, :2]), 'shape of pred'),
        ((logits, dense * 2), 'qualities must be in \\[0, 1\\]'),
        ((logits, torch.rand(N, **F64)), 'target must be a tuple'),
        ((logits[0], (labels, score)), 'pred must be an \\(N, C\\)'),
        ((logits.clone().fill_(float('nan')), (labels, score)), 'non-finite'),
    ]
    for args, match in cases:
        with pytest.raises((ValueError, TypeError), match=match):
            loss(*args)
    with pytest.raises(ValueError, match='weight must be a per-anchor'):
        loss(logits, (labels, score), weight=weight[:, None].expand(N, C))
    with pytest.raises(ValueError, match='weight must be finite and >= 0'):
        loss(logits, (labels, score), weight=-weight)
    with pytest.raises(ValueError, match='activated=True'):
        AsymmetricQualityFocalLoss(activated=True)(logits, (labels, score))
    with pytest.raises(ValueError, match='reduction_override'):
        loss(logits, (labels, score), reduction_override='avg')


# ------------------------------------------------------------------------------ VarifocalLoss
@pytest.mark.parametrize('alpha,gamma', [(0.75, 2.0), (0.25, 1.5), (1.0, 0.0)])
@pytest.mark.parametrize('iou_weighted', [True, False])
@pytest.mark.parametrize('reduce', [dict(), dict(avg_factor=2.5), dict(reduction_override='sum'),
                                    dict(reduction_override='none')])
def test_equals_varifocal_loss(alpha, gamma, iou_weighted, reduce):
    logits, _, _, weight, dense = logits_and_targets(4)
    ours = AsymmetricVarifocalLoss(alpha=alpha, gamma_neg=gamma, clip=0.0, iou_weighted=iou_weighted,
                                   loss_weight=2.0)
    theirs = VarifocalLoss(alpha=alpha, gamma=gamma, iou_weighted=iou_weighted, loss_weight=2.0)
    assert isinstance(ours, VarifocalLoss)
    for w in (None, weight[:, None], weight[:, None].expand(N, C)):
        assert_same(value_and_grad(ours, logits, dense, weight=w, **reduce),
                    value_and_grad(theirs, logits, dense, weight=w, **reduce))


def test_varifocal_gamma_is_gamma_neg():
    logits, _, _, _, dense = logits_and_targets(7)
    ours = MODELS.build(dict(type='AsymmetricVarifocalLoss', use_sigmoid=True, alpha=0.5, gamma=1.5))
    assert ours.gamma_neg == 1.5
    assert_same(value_and_grad(ours, logits, dense), value_and_grad(VarifocalLoss(alpha=0.5, gamma=1.5), logits, dense))
    with pytest.raises(ValueError, match='not both'):
        AsymmetricVarifocalLoss(gamma=2.0, gamma_neg=4.0)


def test_varifocal_margin_against_hand_formula():
    logits, _, _, _, dense = logits_and_targets(5)
    loss = AsymmetricVarifocalLoss(alpha=0.75, gamma_neg=4.0, clip=0.05, reduction='none')
    got = loss(logits, dense)
    for i in range(N):
        for j in range(C):
            x, q = logits[i, j].item(), dense[i, j].item()
            p = 1 / (1 + math.exp(-x))
            # Positives: q * BCE(p, q) (VFL, Eq. 2); negatives: alpha * ASL's L- (Eq. 7).
            expected = (-q * (q * math.log(p) + (1 - q) * math.log(1 - p)) if q > 0
                        else 0.75 * hand_negative(x, 4.0, 0.05))
            assert got[i, j].item() == pytest.approx(expected, rel=1e-12, abs=1e-300)


def test_varifocal_errors():
    logits, _, _, _, dense = logits_and_targets()
    with pytest.raises(ValueError, match='use_sigmoid'):
        AsymmetricVarifocalLoss(use_sigmoid=False)
    with pytest.raises(ValueError, match='clip'):
        AsymmetricVarifocalLoss(clip=-0.1)
    with pytest.raises(ValueError, match='dense \\(N, C\\) IoU targets'):
        AsymmetricVarifocalLoss()(logits, torch.zeros(N, dtype=torch.long))
    with pytest.raises(ValueError, match='weight'):
        AsymmetricVarifocalLoss()(logits, dense, weight=torch.ones(N, **F64))
    with pytest.raises(ValueError, match='targets must be in \\[0, 1\\]'):
        AsymmetricVarifocalLoss()(logits, dense + 1.5)


# ------------------------------------------------------------------------------ inside real heads
HEAD_COMMON = dict(num_classes=3, in_channels=8, feat_channels=8, stacked_convs=1,
                   norm_cfg=dict(type='GN', num_groups=4, requires_grad=True))
ANCHORS = dict(type='AnchorGenerator', ratios=[1.0], octave_base_scale=4, scales_per_octave=1, strides=[8, 16])


def head_cfg(kind, loss_cls):
    if kind == 'GFLHead':
        return dict(type=kind, **HEAD_COMMON, loss_cls=loss_cls, reg_max=4, anchor_generator=ANCHORS,
                    loss_dfl=dict(type='DistributionFocalLoss', loss_weight=0.25),
                    loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
                    train_cfg=ConfigDict(assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1,
                                         pos_weight=-1, debug=False))
    if kind == 'RTMDetHead':
        return dict(type=kind, **HEAD_COMMON, loss_cls=loss_cls,
                    anchor_generator=dict(type='MlvlPointGenerator', offset=0, strides=[8, 16]),
                    bbox_coder=dict(type='DistancePointBBoxCoder'), loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
                    train_cfg=ConfigDict(assigner=dict(type='DynamicSoftLabelAssigner', topk=13), allowed_border=-1,
                                         pos_weight=-1, debug=False))
    if kind == 'TOODHead':
        return dict(type=kind, **HEAD_COMMON, loss_cls=loss_cls, anchor_type='anchor_free', anchor_generator=ANCHORS,
                    bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0] * 4, target_stds=[0.1, 0.1, 0.2, 0.2]),
                    initial_loss_cls=dict(type='FocalLoss', use_sigmoid=True, activated=True, gamma=2.0, alpha=0.25),
                    loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
                    train_cfg=ConfigDict(initial_epoch=4, initial_assigner=dict(type='ATSSAssigner', topk=9),
                                         assigner=dict(type='TaskAlignedAssigner', topk=13), alpha=1, beta=6,
                                         allowed_border=-1, pos_weight=-1, debug=False))
    if kind == 'VFNetHead':
        return dict(type=kind, num_classes=3, in_channels=8, feat_channels=8, stacked_convs=1, strides=[8, 16],
                    regress_ranges=((-1, 32), (32, 1e8)), center_sampling=False, dcn_on_last_conv=False,
                    use_atss=True, use_vfl=True, loss_cls=loss_cls,
                    norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
                    anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], octave_base_scale=4,
                                          scales_per_octave=1, center_offset=0.0, strides=[8, 16]),
                    train_cfg=ConfigDict(assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1,
                                         pos_weight=-1, debug=False))
    raise KeyError(kind)


def tiny_batch(size=64):
    samples = []
    for i in range(2):
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), pad_shape=(size, size),
                                             batch_input_shape=(size, size), scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(bboxes=torch.tensor([[4., 6., 30., 40.], [20., 10., 60., 50.]]),
                                           labels=torch.tensor([i, 2]))
        samples.append(sample)
    g = torch.Generator().manual_seed(1)
    feats = [torch.randn(2, 8, size // s, size // s, generator=g) for s in (8, 16)]
    return feats, samples


def head_loss(kind, loss_cls):
    """Losses and parameter gradients of a head built from ``seed 0`` on the tiny batch (float32: the heads'
    anchors and targets are float32 whatever the features' dtype)."""
    torch.manual_seed(0)
    head = MODELS.build(head_cfg(kind, loss_cls))
    feats, samples = tiny_batch()
    losses = head.loss(feats, samples)
    losses = {k: torch.stack(v).sum() if isinstance(v, list) else v for k, v in losses.items()}
    sum(losses.values()).backward()
    return losses, {n: p.grad for n, p in head.named_parameters() if p.grad is not None}


def assert_same_head(a, b):
    assert a[0].keys() == b[0].keys() and a[1].keys() == b[1].keys()
    for k in a[0]:
        torch.testing.assert_close(a[0][k], b[0][k], rtol=1e-6, atol=1e-7)
    for k in a[1]:
        torch.testing.assert_close(a[1][k], b[1][k], rtol=1e-5, atol=1e-7)


@pytest.fixture
def tood_epoch():
    """TOOD's head reads the epoch from the MessageHub; past ``initial_epoch`` it calls ``loss_cls``."""
    hub = MessageHub.get_current_instance()
    hub.update_info('epoch', 5)
    yield
    hub.update_info('epoch', 0)


@pytest.mark.parametrize('kind', ['GFLHead', 'RTMDetHead', 'TOODHead'])
def test_equals_quality_focal_loss_in_heads(kind, tood_epoch):
    activated = kind == 'TOODHead'
    qfl = head_loss(kind, dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, activated=activated))
    ours = dict(type='AsymmetricQualityFocalLoss', use_sigmoid=True, gamma_pos=2.0, gamma_neg=2.0, clip=0.0,
                activated=activated)
    aqfl = head_loss(kind, ours)
    assert qfl[0]['loss_bbox'] > 0  # the batch has positives: the quality targets are exercised
    assert_same_head(aqfl, qfl)
    # The asymmetry changes the head's classification loss (the loss is the one the head calls).
    asym = head_loss(kind, dict(ours, gamma_neg=4.0, clip=0.05))
    assert asym[0]['loss_cls'] < qfl[0]['loss_cls']


def test_equals_varifocal_loss_in_vfnet_head():
    vfl = head_loss('VFNetHead', dict(type='VarifocalLoss', use_sigmoid=True, alpha=0.75, gamma=2.0,
                                      iou_weighted=True, loss_weight=1.0))
    ours = dict(type='AsymmetricVarifocalLoss', use_sigmoid=True, alpha=0.75, gamma_neg=2.0, clip=0.0,
                iou_weighted=True, loss_weight=1.0)
    avfl = head_loss('VFNetHead', ours)
    assert vfl[0]['loss_bbox'] > 0
    assert_same_head(avfl, vfl)
    asym = head_loss('VFNetHead', dict(ours, gamma_neg=4.0, clip=0.05))
    assert asym[0]['loss_cls'] < vfl[0]['loss_cls']


def detr_loss(loss_cls, cls_cost):
    """DETRHead losses and gradients with a Hungarian assigner whose classification cost is ``cls_cost``."""
    torch.manual_seed(0)
    head = MODELS.build(dict(
        type='DETRHead', num_classes=3, embed_dims=8, loss_cls=loss_cls, loss_bbox=dict(type='L1Loss', loss_weight=5.0),
        loss_iou=dict(type='GIoULoss', loss_weight=2.0),
        train_cfg=ConfigDict(assigner=dict(type='HungarianAssigner', match_costs=[
            cls_cost, dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
            dict(type='IoUCost', iou_mode='giou', weight=2.0)]))))
    g = torch.Generator().manual_seed(1)
    cls_scores, bbox_preds = head(torch.randn(2, 2, 10, 8, generator=g))  # (decoder layers, images, queries, dims)
    _, samples = tiny_batch()
    losses = head.loss_by_feat(cls_scores, bbox_preds, [s.gt_instances for s in samples],
                               [s.metainfo for s in samples])
    sum(losses.values()).backward()
    return losses, {n: p.grad for n, p in head.named_parameters() if p.grad is not None}


def test_equals_quality_focal_loss_in_detr_head():
    """DETRHead hands (labels, IoU) to an instance of QualityFocalLoss; matched by AsymmetricFocalLossCost."""
    qfl = detr_loss(dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=2.0),
                    dict(type='FocalLossCost', weight=2.0))
    ours = dict(type='AsymmetricQualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=2.0)
    aqfl = detr_loss(ours, dict(type='AsymmetricFocalLossCost', weight=2.0))
    assert_same_head(aqfl, qfl)
    asym = detr_loss(dict(ours, gamma_neg=4.0, clip=0.05),
                     dict(type='AsymmetricFocalLossCost', gamma_neg=4.0, clip=0.05, weight=2.0))
    assert asym[0]['loss_cls'] < qfl[0]['loss_cls']


# ------------------------------------------------------------------------------ AsymmetricLoss refuses these heads
ASL = dict(type='AsymmetricLoss', use_sigmoid=True, gamma_pos=0.0, gamma_neg=4.0, clip=0.05)


def test_asymmetric_loss_refuses_tood_head_at_its_first_call(tood_epoch):
    """TOOD calls loss_cls with (labels, alignment metrics) on probabilities after ``initial_epoch``."""
    with pytest.raises(TypeError, match="tuple target.*type='AsymmetricQualityFocalLoss'"):
        head_loss('TOODHead', ASL)
    # Keeping TOOD's ``activated=True`` fails when the head is built.
    with pytest.raises(ValueError, match="activated=True.*type='AsymmetricQualityFocalLoss'"):
        head_loss('TOODHead', dict(ASL, activated=True))


def test_asymmetric_loss_refuses_gfl_head():
    with pytest.raises(TypeError, match="tuple target.*type='AsymmetricQualityFocalLoss'"):
        head_loss('GFLHead', ASL)


def test_asymmetric_loss_refuses_centernet_heads():
    torch.manual_seed(0)
    head = MODELS.build(dict(type='CenterNetUpdateHead', num_classes=3, in_channels=8, feat_channels=8,
                             stacked_convs=1, strides=[8, 16], regress_ranges=((0, 32), (24, 1e8)), loss_cls=ASL,
                             norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
                             loss_bbox=dict(type='GIoULoss', loss_weight=2.0)))
    feats, samples = tiny_batch()
    with pytest.raises(TypeError, match='GaussianFocalLoss is not supported by AsymmetricLoss'):
        head.loss(feats, samples)
    # CenterNetHead's loss_center_heatmap: (B, C, H, W) Gaussian heatmaps.
    with pytest.raises(ValueError, match='GaussianFocalLoss'):
        MODELS.build(ASL)(torch.randn(2, 3, 8, 8), torch.rand(2, 3, 8, 8))


def test_asymmetric_loss_refusals_called_directly():
    logits, labels, score, _, _ = logits_and_targets()
    loss = MODELS.build(ASL)
    with pytest.raises(TypeError, match='AsymmetricQualityFocalLoss'):
        loss(logits, (labels, score))
    with pytest.raises(TypeError, match="unexpected keyword argument\\(s\\) \\['foo'\\]"):
        loss(logits, labels, foo=1)
    # activated=False (FocalLoss's default) is accepted and changes nothing.
    torch.testing.assert_close(MODELS.build(dict(ASL, activated=False))(logits, labels), loss(logits, labels))

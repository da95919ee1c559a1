"""EqualizedFocalLoss: FocalLoss at s = 0, the gradient statistics of its logits hook against |dL/dz| written out
by hand, the per-class gamma_j they give, checkpoints, low-precision logits, FCOS's head, argument errors and a
2-process gloo run whose ranks end with the pooled statistics."""
import math
import os
import socket

import pytest
import torch
import torch.nn.functional as F

from mmdet_asl.models.losses.equalized_focal_loss import EqualizedFocalLoss

ALPHA = 0.25


def closed_form(z, t, gamma, alpha=ALPHA, gamma_b=2.0):
    """Element loss and dL/dz of alpha_t (gamma_j / gamma_b) (1 - p_t)^gamma_j (-log p_t) for hard targets t,
    written out: positive dL/dz = alpha (1-p)^g (g p log p - (1-p)), negative (1-alpha) p^g (p - g (1-p) log(1-p)),
    both times gamma_j / gamma_b."""
    p = torch.sigmoid(z)
    w = gamma / gamma_b
    pos_loss = -alpha * (1 - p) ** gamma * torch.log(p)
    neg_loss = -(1 - alpha) * p ** gamma * torch.log(1 - p)
    pos_grad = alpha * (1 - p) ** gamma * (gamma * p * torch.log(p) - (1 - p))
    neg_grad = (1 - alpha) * p ** gamma * (p - gamma * (1 - p) * torch.log(1 - p))
    return w * torch.where(t > 0, pos_loss, neg_loss), w * torch.where(t > 0, pos_grad, neg_grad)


def one_hot(labels, num_classes):
    return F.one_hot(labels, num_classes + 1)[:, :num_classes].to(torch.float64)


def hand_stats(z, labels, gamma, scale=1.0):
    """(pos, neg) sums over the samples of |dL/dz| per class, from the closed form (reduction 'sum' times scale)."""
    t = one_hot(labels, z.shape[1])
    _, grad = closed_form(z, t, gamma)
    mag = (grad * scale).abs()
    return (mag * t).sum(0), (mag * (1 - t)).sum(0)


def hand_gamma(pos, neg, gamma_b=2.0, s=8.0):
    g = (pos / (neg + 1e-10)).clamp(0, 1)
    g = torch.where((pos == 0) & (neg == 0), torch.ones_like(g), g)
    return gamma_b + s * (1 - g)


# ------------------------------------------------------------------------------------------------ s = 0: FocalLoss
@pytest.mark.parametrize('target_form', ['index', 'one_hot'])
@pytest.mark.parametrize('weight_form', [None, 'N', 'NC', 'flat'])
@pytest.mark.parametrize('reduction,avg_factor', [('mean', None), ('mean', 7.0), ('mean', 'tensor'),
                                                  ('sum', None), ('none', None)])
def test_scale_zero_is_mmdet_focal_loss(target_form, weight_form, reduction, avg_factor):
    from mmdet.models.losses import FocalLoss
    torch.manual_seed(0)
    n, c = 11, 4
    z = (torch.randn(n, c, dtype=torch.float64) * 3)
    labels = torch.randint(0, c + 1, (n,))
    target = labels if target_form == 'index' else one_hot(labels, c)
    weight = {None: None, 'N': torch.rand(n, dtype=torch.float64), 'NC': torch.rand(n, c, dtype=torch.float64),
              'flat': torch.rand(n * c, dtype=torch.float64)}[weight_form]
    if avg_factor == 'tensor':
        avg_factor = torch.tensor(5.0, dtype=torch.float64)
    efl = EqualizedFocalLoss(num_classes=c, gamma_b=2.0, scale_factor=0.0, alpha=ALPHA, reduction='sum',
                             loss_weight=1.5)
    # statistics that would move gamma_j if s were not 0
    efl.pos_grad.copy_(torch.tensor([0.1, 0.0, 3.0, 0.2], dtype=torch.float64))
    efl.neg_grad.copy_(torch.tensor([1.0, 2.0, 1.0, 0.0], dtype=torch.float64))
    focal = FocalLoss(gamma=2.0, alpha=ALPHA, reduction='sum', loss_weight=1.5)
    za, zb = z.clone().requires_grad_(), z.clone().requires_grad_()
    la = efl(za, target, weight, avg_factor=avg_factor, reduction_override=reduction)
    lb = focal(zb, target, weight, avg_factor=avg_factor, reduction_override=reduction)
    torch.testing.assert_close(la, lb, rtol=1e-12, atol=1e-14)
    grad = torch.rand_like(la)  # any upstream gradient (reduction 'none' is an (N, C) loss)
    la.backward(grad)
    lb.backward(grad)
    torch.testing.assert_close(za.grad, zb.grad, rtol=1e-12, atol=1e-14)


def test_before_any_statistics_it_is_focal_loss_whatever_s():
    """No statistics yet: g_j = 1 (the official ratio buffer starts at ones), gamma_j = gamma_b, weight 1."""
    from mmdet.models.losses import FocalLoss
    torch.manual_seed(1)
    z = torch.randn(9, 3, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 4, (9,))
    efl = EqualizedFocalLoss(num_classes=3, scale_factor=8.0)
    assert torch.equal(efl.class_gamma(), torch.full((3,), 2.0, dtype=torch.float64))
    torch.testing.assert_close(efl(z, labels, avg_factor=3.0), FocalLoss()(z, labels, avg_factor=3.0),
                               rtol=1e-12, atol=0)


def test_loss_follows_the_per_class_gamma_of_the_statistics():
    """With statistics set, each class's loss is (gamma_j / gamma_b) alpha_t (1 - p_t)^gamma_j BCE (closed form)."""
    torch.manual_seed(2)
    z = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 3, 3, 1, 0])
    efl = EqualizedFocalLoss(num_classes=3, gamma_b=1.5, scale_factor=4.0, reduction='none')
    pos, neg = torch.tensor([0.2, 5.0, 0.0], dtype=torch.float64), torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    efl.pos_grad.copy_(pos)
    efl.neg_grad.copy_(neg)
    gamma = hand_gamma(pos, neg, 1.5, 4.0)
    torch.testing.assert_close(gamma, torch.tensor([1.5 + 4 * 0.8, 1.5, 5.5], dtype=torch.float64))
    loss = efl(z, labels)
    expected, expected_grad = closed_form(z.detach(), one_hot(labels, 3), gamma, gamma_b=1.5)
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-15)
    loss.sum().backward()
    torch.testing.assert_close(z.grad, expected_grad, rtol=1e-10, atol=1e-15)


# ------------------------------------------------------------------------------------------------ statistics
def test_hook_collects_hand_gradients_and_sets_next_gamma():
    """2 samples, 2 classes: sample 0 is a positive of class 0, sample 1 is background. |dL/dz| by hand, then
    gamma_j of the next call and the statistics after a second backward."""
    z = torch.tensor([[0.5, -1.0], [-0.3, 0.8]], dtype=torch.float64)
    labels = torch.tensor([0, 2])
    efl = EqualizedFocalLoss(num_classes=2, gamma_b=2.0, scale_factor=8.0, alpha=ALPHA, reduction='sum',
                             loss_weight=0.5)
    z1 = z.clone().requires_grad_()
    efl(z1, labels).backward()
    # first call: gamma = 2 everywhere, weight 1; L = 0.5 * sum of the element losses
    p = torch.sigmoid(z)
    g00 = 0.5 * ALPHA * (1 - p[0, 0]) ** 2 * (2 * p[0, 0] * math.log(p[0, 0]) - (1 - p[0, 0]))  # positive
    negs = 0.5 * (1 - ALPHA) * p ** 2 * (p - 2 * (1 - p) * torch.log(1 - p))  # every element as a negative
    pos = torch.tensor([abs(g00), 0.0], dtype=torch.float64)
    neg = torch.stack([negs[1, 0].abs(), negs[0, 1].abs() + negs[1, 1].abs()])
    torch.testing.assert_close(z1.grad[0, 0], g00, rtol=1e-12, atol=0)  # the hand gradient is the real one
    torch.testing.assert_close(efl.pos_grad, pos, rtol=1e-12, atol=0)
    torch.testing.assert_close(efl.neg_grad, neg, rtol=1e-12, atol=0)
    g0 = pos[0] / neg[0]
    assert 0.05 < g0 < 0.95  # a ratio strictly inside (0, 1): the test sees the clamp-free branch
    gamma = torch.stack([2.0 + 8.0 * (1 - g0), torch.tensor(10.0, dtype=torch.float64)])  # class 1: no positive
    torch.testing.assert_close(efl.class_gamma(), gamma, rtol=1e-9, atol=0)
    # the second call uses that gamma; its statistics add to the first
    z2 = z.clone().requires_grad_()
    loss = efl(z2, labels)
    expected, _ = closed_form(z, one_hot(labels, 2), gamma)
    torch.testing.assert_close(loss, 0.5 * expected.sum(), rtol=1e-9, atol=0)
    loss.backward()
    pos2, neg2 = hand_stats(z, labels, gamma, scale=0.5)
    torch.testing.assert_close(efl.pos_grad, pos + pos2, rtol=1e-9, atol=0)
    torch.testing.assert_close(efl.neg_grad, neg + neg2, rtol=1e-9, atol=0)


def test_hook_sees_only_this_loss_and_weights():
    """Another loss on the same logits adds nothing; weight 0 elements add nothing; avg_factor scales dL/dz."""
    torch.manual_seed(3)
    z = torch.randn(6, 3, dtype=torch.float64)
    labels = torch.tensor([0, 1, 3, 2, 3, 0])
    weight = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    efl = EqualizedFocalLoss(num_classes=3)
    zz = z.clone().requires_grad_()
    (efl(zz, labels, weight, avg_factor=4.0) + 100 * zz.pow(2).sum()).backward()
    keep = weight > 0
    pos, neg = hand_stats(z[keep], labels[keep], torch.full((3,), 2.0, dtype=torch.float64),
                          scale=1 / (4.0 + torch.finfo(torch.float32).eps))
    torch.testing.assert_close(efl.pos_grad, pos, rtol=1e-12, atol=0)
    torch.testing.assert_close(efl.neg_grad, neg, rtol=1e-12, atol=0)


def test_soft_dense_targets_split_each_gradient_magnitude():
    """A soft target t puts t |dL/dz| into the positive sum and (1 - t) |dL/dz| into the negative sum; dL/dz from
    mmdet's FocalLoss (the loss before any statistics), whose gradients change sign within a class here."""
    from mmdet.models.losses import FocalLoss
    torch.manual_seed(7)
    z = torch.randn(8, 3, dtype=torch.float64) * 2
    t = torch.rand(8, 3, dtype=torch.float64)
    efl = EqualizedFocalLoss(num_classes=3)
    efl(z.clone().requires_grad_(), t).backward()
    zz = z.clone().requires_grad_()
    grad, = torch.autograd.grad(FocalLoss()(zz, t), zz)
    assert ((grad > 0).any(0) & (grad < 0).any(0)).any()
    torch.testing.assert_close(efl.pos_grad, (grad.abs() * t).sum(0), rtol=1e-12, atol=0)
    torch.testing.assert_close(efl.neg_grad, (grad.abs() * (1 - t)).sum(0), rtol=1e-12, atol=0)


def test_no_grad_and_non_finite_backward_add_nothing():
    efl = EqualizedFocalLoss(num_classes=2)
    z = torch.tensor([[0.5, -1.0], [-0.3, 0.8]], dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        efl(z, torch.tensor([0, 1]))
    (efl(z, torch.tensor([0, 1])) * math.inf).backward()  # what a GradScaler overflow step sends back
    assert torch.equal(efl.pos_grad, torch.zeros(2, dtype=torch.float64))
    assert torch.equal(efl.neg_grad, torch.zeros(2, dtype=torch.float64))


# ------------------------------------------------------------------------------------------------ checkpoints
def test_buffers_in_state_dict_restore_gamma_exactly():
    torch.manual_seed(4)
    efl = EqualizedFocalLoss(num_classes=4)
    for _ in range(3):
        z = torch.randn(10, 4, requires_grad=True)
        efl(z, torch.randint(0, 5, (10,))).backward()
    state = efl.state_dict()
    assert set(state) == {'pos_grad', 'neg_grad'}
    assert not torch.equal(efl.class_gamma(), torch.full((4,), 2.0, dtype=torch.float64))
    resumed = EqualizedFocalLoss(num_classes=4)
    resumed.load_state_dict(state)
    assert torch.equal(resumed.class_gamma(), efl.class_gamma())
    z = torch.randn(10, 4)
    labels = torch.randint(0, 5, (10,))
    assert torch.equal(resumed(z, labels), efl(z, labels))
    resumed.half()  # the statistics stay float64 in a half model
    assert resumed.pos_grad.dtype == resumed.neg_grad.dtype == torch.float64
    assert torch.equal(resumed.class_gamma(), efl.class_gamma())


# ------------------------------------------------------------------------------------------------ low precision
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_logits_give_finite_loss_grads_and_statistics(dtype):
    torch.manual_seed(5)
    efl = EqualizedFocalLoss(num_classes=3)
    z = (torch.randn(16, 3) * 4).to(dtype)
    z[0] = torch.tensor([30.0, -30.0, 60000.0 if dtype == torch.float16 else 1e30])
    labels = torch.randint(0, 4, (16,))
    for _ in range(2):  # the second call runs with the gamma_j of the first
        zz = z.clone().requires_grad_()
        loss = efl(zz, labels, avg_factor=5.0)
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
        loss.backward()
        assert zz.grad.dtype == dtype and torch.isfinite(zz.grad).all()
    assert torch.isfinite(efl.pos_grad).all() and (efl.neg_grad > 0).all()
    reference = EqualizedFocalLoss(num_classes=3)
    reference.load_state_dict(efl.state_dict())
    torch.testing.assert_close(reference(z.float(), labels, avg_factor=5.0), efl(z, labels, avg_factor=5.0))


# ------------------------------------------------------------------------------------------------ FCOS
def test_inside_fcos_head():
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    from test_use_sigmoid_layout import SIZE, batch  # two 64 x 80 images with boxes of classes 0 and 2
    register_all_modules()
    torch.manual_seed(6)
    cfg = dict(type='FCOSHead', num_classes=3, in_channels=8, feat_channels=8, stacked_convs=1, norm_cfg=None,
               strides=[8, 16, 32], regress_ranges=((-1, 64), (64, 128), (128, 1e8)))
    loss_cls = dict(type='EqualizedFocalLoss', num_classes=3, gamma_b=2.0, scale_factor=8.0, alpha=0.25,
                    loss_weight=1.0)
    data = batch()
    feats = [torch.randn(2, 8, -(-SIZE[0] // s), -(-SIZE[1] // s)) for s in (8, 16, 32)]
    # the head reads use_sigmoid from the config dict: without it, C + 1 softmax channels, refused by name
    with pytest.raises(ValueError, match=r"C \+ 1: .* write use_sigmoid=True in loss_cls's config"):
        MODELS.build(dict(cfg, loss_cls=loss_cls)).loss(feats, data)
    head = MODELS.build(dict(cfg, loss_cls=dict(loss_cls, use_sigmoid=True)))
    assert type(head.loss_cls) is EqualizedFocalLoss
    assert {'loss_cls.pos_grad', 'loss_cls.neg_grad'} <= set(head.state_dict())
    losses = head.loss(feats, data)
    assert torch.isfinite(losses['loss_cls'])
    sum(losses.values()).backward()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters() if p.grad is not None)
    pos, neg = head.loss_cls.pos_grad, head.loss_cls.neg_grad
    assert pos[0] > 0 and pos[2] > 0 and pos[1] == 0 and (neg > 0).all()
    gamma = head.loss_cls.class_gamma()
    assert gamma[1] == 10.0 and (gamma > 2.0).all() and torch.isfinite(gamma).all()


# ------------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize('kwargs,error,match', [
    (dict(use_sigmoid=False), ValueError, 'use_sigmoid=True'),
    (dict(num_classes=None), ValueError, 'num_classes must be a positive integer'),
    (dict(num_classes=0), ValueError, 'num_classes must be a positive integer'),
    (dict(scale_factor=-1.0), ValueError, r'scale_factor \(s\) must be in \[0.0, inf\]'),
    (dict(gamma_b=-0.5), ValueError, r'gamma_b must be in \[0.0, inf\]'),
    (dict(gamma_b=0.0), ValueError, 'gamma_b = 0 needs scale_factor'),
    (dict(alpha=1.5), ValueError, r'alpha must be in \[0.0, 1.0\]'),
    (dict(alpha=-0.1), ValueError, r'alpha must be in \[0.0, 1.0\]'),
    (dict(reduction='avg'), ValueError, 'reduction must be one of'),
])
def test_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        EqualizedFocalLoss(**dict(dict(num_classes=3), **kwargs))


def test_gamma_b_zero_without_s_is_alpha_balanced_cross_entropy():
    z = torch.tensor([[0.5, -1.0]], dtype=torch.float64)
    efl = EqualizedFocalLoss(num_classes=2, gamma_b=0.0, scale_factor=0.0, reduction='sum')
    p = torch.sigmoid(z)
    expected = -(ALPHA * torch.log(p[0, 0]) + (1 - ALPHA) * torch.log(1 - p[0, 1]))
    torch.testing.assert_close(efl(z, torch.tensor([0])), expected, rtol=1e-12, atol=0)


def test_input_errors():
    efl = EqualizedFocalLoss(num_classes=3)
    z = torch.zeros(4, 3)
    with pytest.raises(ValueError, match=r'pred \(logits\) has C = 5 classes, but .* num_classes=3'):
        efl(torch.zeros(4, 5), torch.zeros(4, dtype=torch.long))
    bad = z.clone()
    bad[1, 2] = math.nan
    with pytest.raises(ValueError, match=r'pred \(logits\) contains 1 non-finite value'):
        efl(bad, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r'target \(class indices\) must be in \[0, 3\]'):
        efl(z, torch.tensor([0, 1, 4, 2]))
    with pytest.raises(TypeError, match='tuple target'):
        efl(z, (torch.zeros(4, dtype=torch.long), torch.ones(4)))
    with pytest.raises(ValueError, match='reduction_override'):
        efl(z, torch.zeros(4, dtype=torch.long), reduction_override='avg')


# ------------------------------------------------------------------------------------------------ DDP
def _ddp_worker(rank, world_size, port, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch.distributed.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        gen = torch.Generator().manual_seed(100 + rank)  # each rank its own data
        efl = EqualizedFocalLoss(num_classes=3, reduction='sum')
        record = []
        for _ in range(2):
            z = torch.randn(6, 3, dtype=torch.float64, generator=gen) * 2
            labels = torch.randint(0, 4, (6,), generator=gen)
            zz = z.clone().requires_grad_()
            efl(zz, labels).backward()
            record.append(dict(z=z, labels=labels, pos=efl.pos_grad.clone(), neg=efl.neg_grad.clone()))
        torch.save(record, os.path.join(out_dir, f'rank{rank}.pt'))
    finally:
        torch.distributed.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_ddp_ranks_hold_the_pooled_statistics(tmp_path):
    import torch.multiprocessing as mp
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f'rank{r}.pt', weights_only=True) for r in range(2)]
    assert not torch.equal(ranks[0][0]['z'], ranks[1][0]['z'])
    pos = torch.zeros(3, dtype=torch.float64)
    neg = torch.zeros(3, dtype=torch.float64)
    for step in range(2):
        gamma = hand_gamma(pos, neg)  # the pooled statistics so far set every rank's gamma_j
        local = [hand_stats(r[step]['z'], r[step]['labels'], gamma) for r in ranks]
        pos = pos + local[0][0] + local[1][0]
        neg = neg + local[0][1] + local[1][1]
        assert not torch.allclose(local[0][1], neg), 'one rank alone would pass: the test would prove nothing'
        for r in ranks:
            torch.testing.assert_close(r[step]['pos'], pos, rtol=1e-12, atol=0)
            torch.testing.assert_close(r[step]['neg'], neg, rtol=1e-12, atol=0)
        assert torch.equal(ranks[0][step]['pos'], ranks[1][step]['pos'])
        assert torch.equal(ranks[0][step]['neg'], ranks[1][step]['neg'])

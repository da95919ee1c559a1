"""Bad input gets a clear error naming the argument; config errors are raised when the loss is built."""
import math

import pytest
import torch

from mmdet.registry import MODELS

import mmdet_asl  # noqa: F401  (registers AsymmetricLoss)
from mmdet_asl.models import AsymmetricLoss
from mmdet_asl.ops.asl import asymmetric_loss, asymmetric_loss_single_label


@pytest.mark.parametrize('kwargs,match', [
    (dict(gamma_pos=-1.0), 'gamma_pos'),
    (dict(gamma_neg=-0.5), 'gamma_neg'),
    (dict(clip=-0.1), 'clip'),
    (dict(clip=1.0), 'clip'),
    (dict(eps=1.0), 'eps'),
    (dict(eps=-1e-8), 'eps'),
    (dict(alpha=1.5), 'alpha'),
    (dict(focusing_grad='sometimes'), 'focusing_grad'),
    (dict(reduction='avg'), 'reduction'),
    (dict(use_sigmoid=False), 'use_sigmoid'),
    (dict(gamma_neg=float('nan')), 'gamma_neg'),
])
def test_config_errors_at_build_time(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type='AsymmetricLoss', **kwargs))


@pytest.mark.parametrize('kwargs,match', [(dict(gamma_pos='2'), 'gamma_pos'), (dict(clip=None), 'clip'),
                                          (dict(loss_weight='1'), 'loss_weight')])
def test_config_type_errors(kwargs, match):
    with pytest.raises(TypeError, match=match):
        AsymmetricLoss(**kwargs)


def test_shape_mismatch():
    loss = AsymmetricLoss()
    z = torch.randn(5, 3)
    with pytest.raises(ValueError, match='target'):
        loss(z, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match='target'):
        loss(z, torch.zeros(5, 4))
    with pytest.raises(ValueError, match='pred'):
        loss(torch.randn(5, 3, 2), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match='weight'):
        loss(z, torch.zeros(5, dtype=torch.long), weight=torch.ones(7))
    with pytest.raises(TypeError, match='pred'):
        loss(torch.zeros(5, 3, dtype=torch.long), torch.zeros(5, dtype=torch.long))


def test_labels_out_of_range():
    loss = AsymmetricLoss()
    z = torch.randn(5, 3)
    with pytest.raises(ValueError, match=r'target \(class indices\) must be in \[0, 3\]'):
        loss(z, torch.tensor([0, 1, 2, 4, 3]))
    with pytest.raises(ValueError, match='target'):
        loss(z, torch.tensor([0, -1, 2, 3, 3]))
    loss(z, torch.tensor([0, 1, 2, 3, 3]))  # 3 = background is fine


def test_dense_targets_outside_unit_interval():
    with pytest.raises(ValueError, match=r'target \(dense\) values must be in \[0, 1\]'):
        AsymmetricLoss()(torch.randn(2, 3), torch.tensor([[0., 1., 1.5], [0., 0., 0.]]))
    with pytest.raises(ValueError, match='target'):
        AsymmetricLoss()(torch.randn(2, 3), torch.tensor([[0., -0.1, 1.], [0., 0., 0.]]))


def test_non_finite_logits_say_how_many():
    z = torch.randn(4, 3)
    z[0, 0] = float('nan')
    z[2, 1] = float('inf')
    with pytest.raises(ValueError, match='contains 2 non-finite'):
        AsymmetricLoss()(z, torch.zeros(4, dtype=torch.long))


def test_sum_with_avg_factor_and_unknown_override():
    loss = AsymmetricLoss(reduction='sum')
    with pytest.raises(ValueError, match='avg_factor'):
        loss(torch.randn(2, 3), torch.zeros(2, dtype=torch.long), avg_factor=2.0)
    with pytest.raises(ValueError, match='reduction_override'):
        loss(torch.randn(2, 3), torch.zeros(2, dtype=torch.long), reduction_override='avg')


@pytest.mark.parametrize('reduction', ['mean', 'sum', 'none'])
@pytest.mark.parametrize('target', [torch.zeros(0, dtype=torch.long), torch.zeros(0, 4)])
def test_empty_batch_gives_zero_and_zero_grad(reduction, target):
    z = torch.zeros(0, 4, requires_grad=True)
    for avg in ((None, 0.0, 3.0) if reduction == 'mean' else (None, )):
        out = AsymmetricLoss(reduction=reduction)(z, target, avg_factor=avg)
        assert torch.isfinite(out).all()
        assert out.sum().item() == 0
        grad, = torch.autograd.grad(out.sum(), z, allow_unused=False)
        assert grad.shape == z.shape and grad.numel() == 0


def test_all_background_zero_avg_factor_is_finite():
    z = torch.randn(6, 3, requires_grad=True)
    out = AsymmetricLoss(gamma_pos=1, gamma_neg=2, clip=0.0)(z, torch.full((6, ), 3), avg_factor=0.0)
    assert math.isfinite(out.item())


def test_single_label_bad_input():
    with pytest.raises(ValueError, match='labels'):
        asymmetric_loss_single_label(torch.randn(3, 4), torch.tensor([0, 1, 4]))
    with pytest.raises(ValueError, match='gamma_neg'):
        asymmetric_loss_single_label(torch.randn(3, 4), torch.tensor([0, 1, 2]), gamma_neg=-1)


def test_functional_rejects_non_tensor():
    with pytest.raises(TypeError, match='pred'):
        asymmetric_loss([[0.0]], torch.zeros(1, dtype=torch.long))

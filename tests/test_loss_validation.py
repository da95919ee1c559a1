"""Unchecked numbers are refused with errors that name the argument: config values when the loss is built,
tensor values at the call (skipped with validate=False, which then costs no host synchronisation);
``import mmdet_asl`` works without MMPretrain."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from mmdet_asl.models import AsymmetricLoss
from mmdet_asl.ops.asl import asymmetric_loss

NAN, INF = float('nan'), float('inf')


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(loss_weight=NAN), ValueError, 'loss_weight'),
    (dict(loss_weight=-1.0), ValueError, 'loss_weight'),
    (dict(loss_weight='1'), TypeError, 'loss_weight'),
    (dict(probe='no'), TypeError, 'probe'),
    (dict(probe=1), TypeError, 'probe'),
    (dict(impl='fast'), ValueError, 'impl'),
    (dict(validate='yes'), TypeError, 'validate'),
    (dict(gamma_neg=INF), ValueError, 'gamma_neg'),
    (dict(alpha=NAN), ValueError, 'alpha'),
])
def test_config_values_refused_at_build(kwargs, error, match):
    with pytest.raises(error, match=match):
        AsymmetricLoss(**kwargs)


@pytest.mark.parametrize('avg_factor,error', [(NAN, ValueError), (-2.0, ValueError), (INF, ValueError),
                                              ('3', TypeError), (torch.ones(2), ValueError)])
def test_bad_avg_factor(avg_factor, error):
    with pytest.raises(error, match='avg_factor'):
        AsymmetricLoss()(torch.randn(4, 3), torch.zeros(4, dtype=torch.long), avg_factor=avg_factor)


@pytest.mark.parametrize('impl', ['eager', 'compiled'])
@pytest.mark.parametrize('value', [NAN, -2.0])
def test_bad_tensor_avg_factor_and_weights_at_call(impl, value):
    z, labels = torch.randn(4, 3), torch.tensor([0, 1, 3, 2])
    loss = AsymmetricLoss(gamma_pos=1.0, gamma_neg=2.0, clip=0.0, impl=impl)
    with pytest.raises(ValueError, match='avg_factor'):
        loss(z, labels, avg_factor=torch.tensor(value))
    weight = torch.ones(4)
    weight[1] = value
    with pytest.raises(ValueError, match='weight'):
        loss(z, labels, weight=weight)
    loss(z, labels, weight=torch.ones(4), avg_factor=torch.tensor(2.0))  # the good values pass


def test_numpy_logits_name_the_argument():
    with pytest.raises(TypeError, match='pred'):
        AsymmetricLoss()(np.zeros((4, 3), dtype=np.float32), torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match='target'):
        AsymmetricLoss()(torch.zeros(4, 3), np.zeros(4, dtype=np.int64))


def test_uint8_index_labels_are_accepted():
    """Any integer dtype of class indices works (gather takes int64: they are converted, not refused)."""
    z = torch.randn(5, 3)
    labels = torch.tensor([0, 1, 2, 3, 3])
    torch.testing.assert_close(AsymmetricLoss()(z, labels.to(torch.uint8)), AsymmetricLoss()(z, labels))


def test_validate_off_skips_value_checks_and_host_syncs():
    """validate=False: bad values are the caller's responsibility (a NaN logit gives a NaN loss), and the
    call reads nothing back from the device (no .item()/.tolist()/bool() of a tensor)."""
    z = torch.randn(6, 4)
    z[0, 0] = NAN
    labels = torch.tensor([0, 1, 2, 3, 4, 4])
    with pytest.raises(ValueError, match='non-finite'):
        AsymmetricLoss()(z, labels)
    loss = AsymmetricLoss(validate=False)
    assert torch.isnan(loss(z, labels))
    reads = []
    originals = {name: getattr(torch.Tensor, name) for name in ('item', 'tolist', '__bool__')}

    def counting(name):
        def read(self, *args):
            reads.append(name)
            return originals[name](self, *args)
        return read

    good = torch.randn(6, 4, requires_grad=True)
    try:
        for name in originals:
            setattr(torch.Tensor, name, counting(name))
        out = loss(good, labels, weight=torch.ones(6), avg_factor=torch.tensor(3.0))
    finally:
        for name, fn in originals.items():
            setattr(torch.Tensor, name, fn)
    assert reads == []
    out.backward()
    assert torch.isfinite(good.grad).all()


def test_functional_validate_switch():
    z = torch.randn(3, 2)
    with pytest.raises(ValueError, match='target'):
        asymmetric_loss(z, torch.tensor([0, 1, 7]))
    assert asymmetric_loss(z, torch.tensor([0, 1, 2]), validate=False).shape == (3, 2)


def test_import_without_mmpretrain():
    """A detection user without MMPretrain: the package imports, the loss and hook register, and the
    classification pieces are left out."""
    code = textwrap.dedent("""
        import sys
        sys.modules['mmpretrain'] = None  # import mmpretrain raises ImportError
        import torch
        import mmdet_asl
        from mmdet.registry import MODELS
        from mmengine.registry import HOOKS
        assert not mmdet_asl.HAS_MMPRETRAIN
        assert 'mmdet_asl.models.heads' not in sys.modules and 'mmdet_asl.datasets' not in sys.modules
        loss = MODELS.build(dict(type='AsymmetricLoss'))
        print(float(loss(torch.zeros(2, 3), torch.tensor([0, 3]))), HOOKS.get('ProbabilityGapHook').__name__)
    """)
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[-1] == 'ProbabilityGapHook'


@pytest.mark.parametrize('impl', ['eager', 'compiled'])
@pytest.mark.parametrize('value', [-1e-7, -1.1e-7])
def test_tensor_avg_factor_just_below_zero_is_refused(impl, value):
    """avg_factor must be >= 0 (the loss's documented range); a tensor in (-eps, 0), eps = 1.19e-7 the
    float32 epsilon added to it, still gives a positive scale 1 / (avg_factor + eps) and must be refused
    by value, as the float -1e-7 is."""
    z, labels = torch.randn(4, 3), torch.tensor([0, 1, 3, 2])
    loss = AsymmetricLoss(gamma_pos=1.0, gamma_neg=2.0, clip=0.0, impl=impl)
    with pytest.raises(ValueError, match='avg_factor'):
        loss(z, labels, avg_factor=value)
    with pytest.raises(ValueError, match='avg_factor'):
        loss(z, labels, avg_factor=torch.tensor(value))
    # 0 and -0.0 are allowed (all-background batches): the divisor is then eps
    expected = loss(z, labels, reduction_override='sum') / torch.finfo(torch.float32).eps
    for zero in (0.0, -0.0):
        torch.testing.assert_close(loss(z, labels, avg_factor=torch.tensor(zero)), expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize('num_classes,length', [(1, 2), (3, 2), (2, 3)])
@pytest.mark.parametrize('impl', ['eager', 'compiled'])
def test_per_class_gamma_neg_or_clip_of_the_wrong_length_is_refused(num_classes, length, impl):
    """A (K,) gamma- or m with K != C: with C = 1 a (2,) tensor would broadcast the (N, 1) loss to (N, 2)."""
    z = torch.randn(4, num_classes)
    targets = (torch.zeros(4, num_classes), torch.tensor([0, num_classes, 0, num_classes]))
    wrong = torch.linspace(1.0, 3.0, length)
    msg = rf'per class has {length} entries, but pred \(logits\) has C = {num_classes} classes'
    for target in targets:
        with pytest.raises(ValueError, match='gamma_neg ' + msg):
            asymmetric_loss(z, target, gamma_neg=wrong, impl=impl)
        loss = AsymmetricLoss(reduction='none', impl=impl)
        loss.gamma_neg = wrong
        with pytest.raises(ValueError, match='gamma_neg ' + msg):
            loss(z, target)
        loss = AsymmetricLoss(reduction='none', impl=impl)
        loss.clip = wrong / 10
        with pytest.raises(ValueError, match=r'clip \(the probability margin m\) ' + msg):
            loss(z, target)
    # the right length passes, and the loss keeps its (N, C) shape
    loss = AsymmetricLoss(reduction='none', impl=impl)
    loss.gamma_neg = torch.linspace(1.0, 3.0, num_classes)
    assert loss(z, targets[0]).shape == (4, num_classes)


@pytest.mark.parametrize('name', ['gamma_neg', 'clip'])
def test_two_dim_gamma_neg_or_clip_names_the_attribute_and_the_shapes(name):
    loss = AsymmetricLoss()
    with pytest.raises(ValueError, match=rf'{name}.*0-dim tensor or a \(C,\) tensor.*shape \(2, 2\)'):
        setattr(loss, name, torch.full((2, 2), 0.1))


@pytest.mark.parametrize('value,impl', [('1', 'compiled'), (' TRUE ', 'compiled'), ('yes', 'compiled'),
                                        ('on', 'compiled'), ('0', 'eager'), ('false', 'eager'), ('Off', 'eager'),
                                        ('no', 'eager'), ('', None), ('  ', None)])
def test_compile_override_from_the_environment(monkeypatch, value, impl):
    from mmdet_asl.ops.asl.params import impl_override
    monkeypatch.setenv('MMDET_ASL_COMPILE', value)
    assert impl_override() == impl


@pytest.mark.parametrize('value', ['maybe', '2', 'compiled', 'eager', 'y'])
def test_compile_override_refuses_other_words(monkeypatch, value):
    from mmdet_asl.ops.asl.params import impl_override
    monkeypatch.setenv('MMDET_ASL_COMPILE', value)
    with pytest.raises(ValueError, match=f"MMDET_ASL_COMPILE must be one of .*got '{value}'"):
        impl_override()
    monkeypatch.delenv('MMDET_ASL_COMPILE')
    assert impl_override() is None


def test_zero_loss_weight_is_allowed_with_a_tensor_avg_factor():
    """loss_weight >= 0: 0 (a loss switched off) gives a zero loss and gradient, also through a tensor scale."""
    z = torch.randn(4, 3, requires_grad=True)
    out = AsymmetricLoss(loss_weight=0.0)(z, torch.tensor([0, 1, 3, 2]), avg_factor=torch.tensor(2.0))
    out.backward()
    assert out.item() == 0 and bool((z.grad == 0).all())

"""The compiled kernel: same values as the eager one, constants specialised per configuration, a compiler
failure (and only that) selects the eager kernel, no global setting of torch changes, backward hands over
the saved gradient."""
import threading

import pytest
import torch
from torch._dynamo.exc import BackendCompilerFailed

from mmdet_asl.ops.asl import asymmetric_loss, asymmetric_loss_reference
from mmdet_asl.ops.asl import function as asl_function
from mmdet_asl.ops.asl.reference import dense_target


def test_constants_are_specialised_by_value():
    """Float gammas and clip are constants of each configuration's compiled kernel; each new value must
    give its own, correct result (a stale constant would not), and a tensor gamma- must follow its value."""
    torch.manual_seed(3)
    z = torch.rand(300, 11) * 16 - 8
    labels = torch.randint(0, 12, (300, ))
    settings = [(1.0, 4.0, 0.05), (1.0, 2.0, 0.05), (1.0, 4.0, 0.05)]
    for gp, gn, m in settings:
        got = asymmetric_loss(z, labels, gamma_pos=gp, gamma_neg=gn, clip=m, reduce=True, impl='compiled')
        expected = asymmetric_loss(z, labels, gamma_pos=gp, gamma_neg=gn, clip=m, reduce=True, impl='eager')
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=0)
    for gn in (4.0, 2.5):  # a new tensor value recompiles nothing and is used
        got = asymmetric_loss(z, labels, gamma_pos=1.0, gamma_neg=torch.tensor(gn), clip=0.05, reduce=True,
                              impl='compiled')
        ref = asymmetric_loss_reference(z.double(), dense_target(labels, 11), 1.0, gn, 0.05).sum()
        torch.testing.assert_close(got.double(), ref, rtol=1e-6, atol=0)


def test_compiled_sum_is_accurate_over_millions_of_terms():
    """The reduction accumulates in float64 (a float32 accumulator drifts by 1e-4 over millions of terms)."""
    torch.manual_seed(2)
    n, c = 60000, 80
    z = torch.randn(n, c) * 3 - 4
    labels = torch.randint(0, c + 1, (n, ))
    total = asymmetric_loss(z, labels, gamma_pos=0.0, gamma_neg=4.0, clip=0.05, reduce=True, impl='compiled')
    exact = asymmetric_loss_reference(z.double(), dense_target(labels, c), 0.0, 4.0, 0.05).sum()
    assert abs(total.double().item() / exact.item() - 1) < 1e-6


@pytest.mark.parametrize('impl', ['eager', 'compiled'])
def test_backward_hands_over_the_saved_gradient(impl):
    """With the scale folded in (grad_out == 1), backward returns the saved gradient itself: no (N, C)
    multiply, no copy. Retaining the graph must still give correct, independent gradients."""
    torch.manual_seed(4)
    z = (torch.rand(200, 9) * 10 - 5).requires_grad_(True)
    labels = torch.randint(0, 10, (200, ))
    loss = asymmetric_loss(z, labels, reduce=True, scale=0.25, impl=impl)
    loss.backward()
    once = z.grad.clone()
    z.grad = None
    loss = asymmetric_loss(z, labels, reduce=True, scale=0.25, impl=impl)
    loss.backward(retain_graph=True)
    loss.backward()
    torch.testing.assert_close(z.grad, 2 * once)
    scaled_outside = asymmetric_loss(z, labels, reduce=True, impl=impl) * 0.25
    grad_outside, = torch.autograd.grad(scaled_outside, z)
    torch.testing.assert_close(once, grad_outside, rtol=1e-6, atol=1e-12)


def _broken_compile(error):
    def compile(fn, **kwargs):
        def run(*args):
            raise error
        return run
    return compile


def test_compiler_failure_falls_back_to_eager_with_a_warning(monkeypatch):
    """Where the compiler fails (no C++ compiler, an unsupported platform), the call warns, the eager
    kernel gives the loss, and input validation still raises."""
    monkeypatch.setattr(asl_function, '_compiled', {})
    monkeypatch.setattr(asl_function, '_compiler_failure', None)
    monkeypatch.setattr(torch, 'compile', _broken_compile(BackendCompilerFailed(
        lambda *a: None, RuntimeError('no C++ compiler here'), None)))
    torch.manual_seed(3)
    z = (torch.randn(70, 9) * 4).requires_grad_(True)
    labels = torch.randint(0, 10, (70, ))
    with pytest.warns(UserWarning, match='torch.compile failed'):
        loss = asymmetric_loss(z, labels, gamma_pos=1.0, gamma_neg=2.0, clip=0.05, reduce=True, impl='compiled')
    assert asl_function._compiler_failure is not None
    expected = asymmetric_loss(z, labels, gamma_pos=1.0, gamma_neg=2.0, clip=0.05, reduce=True, impl='eager')
    torch.testing.assert_close(loss, expected)
    bad = z.detach().clone()
    bad[3, 4] = float('nan')
    with pytest.raises(ValueError, match='1 non-finite'):
        asymmetric_loss(bad, labels, reduce=True, impl='compiled')


def test_runtime_error_propagates_and_keeps_compilation(monkeypatch):
    """An error of the computation (here: out of memory) is not a compiler failure: it propagates, and the
    compiled kernel stays selected."""
    monkeypatch.setattr(asl_function, '_compiled', {})
    monkeypatch.setattr(asl_function, '_compiler_failure', None)
    monkeypatch.setattr(torch, 'compile', _broken_compile(torch.OutOfMemoryError('out of memory')))
    with pytest.raises(torch.OutOfMemoryError):
        asymmetric_loss(torch.randn(5, 3), torch.zeros(5, dtype=torch.long), impl='compiled')
    assert asl_function._compiler_failure is None


def test_no_global_torch_setting_changes_across_threads():
    """Two threads calling the compiled loss (as nn.DataParallel replicas do) leave dynamo's settings as
    they were."""
    config = torch._dynamo.config
    before = {key: getattr(config, key) for key in ('specialize_float', 'recompile_limit', 'assume_static_by_default',
                                                    'automatic_dynamic_shapes')}
    errors = []

    def work(seed):
        try:
            torch.manual_seed(seed)
            z = torch.randn(64 + seed, 5)
            asymmetric_loss(z, torch.randint(0, 6, (64 + seed, )), gamma_pos=1.0, gamma_neg=4.0, clip=0.05,
                            reduce=True, impl='compiled')
        except Exception as exc:  # noqa: BLE001 -- reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, )) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert {key: getattr(config, key) for key in before} == before


@pytest.mark.parametrize('impl', ['eager', 'compiled'])
def test_loss_traces_whole_inside_an_outer_compile(impl):
    """fullgraph=True: the loss module (probe on, adaptive gamma- tensor, tensor avg_factor) is one operator
    of the outer graph, with no graph break, and gives the uncompiled values and gradients."""
    from mmdet_asl.models import AsymmetricLoss

    torch.manual_seed(5)
    layer = torch.nn.Linear(6, 4)
    loss = AsymmetricLoss(gamma_pos=1.0, gamma_neg=3.0, clip=0.05, impl=impl, probe=True)
    loss.gamma_neg_dynamic = True

    def step(x, labels, avg_factor):
        return loss(layer(x), labels, avg_factor=avg_factor)

    compiled_step = torch.compile(step, fullgraph=True, backend='aot_eager')
    x, labels, avg = torch.randn(40, 6), torch.randint(0, 5, (40, )), torch.tensor(7.0)
    results = []
    for fn in (compiled_step, step):
        layer.zero_grad()
        value = fn(x, labels, avg)
        value.backward()
        results.append((value.detach(), layer.weight.grad.clone(), loss.pop_probe_sums()))
    for got, expected in zip(*results):
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)
    assert results[0][2][1] > 0

"""Benchmark: formulations of the negative term's fused loop, time against accuracy.

Why the kernel in ``mmdet_asl/functional.py`` computes p the way it does. Each variant is the dense loop of
the negative term: the kernel's own ``_negative_terms`` (loss summed in float64, element-wise gradient with
the focusing weight differentiated, Eq. 8), compiled by inductor with the kernel's own options, on the same
(N, C) logits. The variants differ only in how the sigmoid parts (p, 1 - p, log(1 - p)) are formed; the
rows marked "ours" take them from the kernel's ``_sigmoid_parts``. Accuracy is the largest relative error
of the element-wise loss against a float64 transcription of Eq. 7 at gamma- = 4, over 8M logits in
[-20, 20] (where the loss exceeds 1e-12, the tests' absolute tolerance) plus 1M logits within 1e-3 of the
kink p = m.

    python tools/benchmark_kernel_variants.py                     # (40 000, 80), 30 interleaved repeats

Rows, with a margin (m = 0.05):
  * p from float64 (ours)   : one float64 exponential; p, 1 - p and p_m rounded once
  * p in float32            : the same loop with p = 1/(1 + exp(-z)) in float32; p_m = max(p - m, 0)
Rows without a margin (m = 0):
  * three exponentials      : sigmoid(z), sigmoid(-z), logsigmoid(-z), as separate calls
  * one exponential (ours)  : t = exp(-z) gives p, 1 - p and exp(-|z|) for log1p
  * one exponential, e/(1+e): the shorter p = exp(-|z|)/(1 + exp(-|z|)) form
"""
import argparse
import functools
import math
import statistics
import time

import torch
import torch.nn.functional as F

from mmdet_asl import functional

GAMMA = 4.0


def _sigmoid_parts(variant, m, z):
    """The sigmoid parts of one formulation; 'ours' is the kernel's own ``_sigmoid_parts``."""
    if variant == 'ours':
        return functional._sigmoid_parts(z, kernel_config(m), need_log_p=False)
    if variant == 'float32 p':                                   # m > 0: p_m = p - m in float32
        t = torch.exp(-z)
        p = 1.0 / (1.0 + t)
        return functional._SigmoidParts(p, t * p, None, None, p)
    if variant == 'three':                                       # m = 0: separate sigmoid calls
        return functional._SigmoidParts(torch.sigmoid(z), torch.sigmoid(-z), None, F.logsigmoid(-z), None)
    e = torch.exp(-torch.abs(z))                                 # m = 0: p = e/(1 + e), e = exp(-|z|)
    s = 1.0 / (1.0 + e)
    nonneg = z >= 0
    return functional._SigmoidParts(torch.where(nonneg, s, e * s), torch.where(nonneg, e * s, s), None,
                                    -torch.clamp(z, min=0.0) - torch.log1p(e), None)


def kernel_config(m):
    """The compiled kernel's configuration for the negative term at gamma- = GAMMA and margin m."""
    return functional._kernel_config(0.0, GAMMA, m, 1e-8, None, 'full', False, True, True, False,
                                     torch.float32)._replace(fused=True)


def negative_loop(variant, m, z, elementwise=False):
    """The kernel's own ``_negative_terms`` on the variant's sigmoid parts: what the fused loop writes
    (gradient and float64 sum), or the element-wise loss for the accuracy column."""
    loss, grad = functional._negative_terms(_sigmoid_parts(variant, m, z), GAMMA, kernel_config(m))
    if elementwise:
        return loss
    return grad, loss.sum(dtype=torch.float64)


def max_rel_error(fn, m):
    gen = torch.Generator().manual_seed(0)
    z = torch.rand(8_000_000, generator=gen) * 40 - 20
    if m > 0:
        z = torch.cat([z, math.log(m / (1 - m)) + (torch.rand(1_000_000, generator=gen) - 0.5) * 2e-3])
    z = z.view(-1, 1)
    p = torch.sigmoid(z.double())
    p_m = torch.clamp(p - m, min=0.0)
    ref = -(p_m ** GAMMA * torch.log(torch.clamp(1 - p_m, min=1e-8)))
    loss = fn(z).double()
    counted = ref > 1e-12
    return ((loss - ref).abs()[counted] / ref[counted]).max().item()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', default='40000x80')
    parser.add_argument('--repeats', type=int, default=30)
    args = parser.parse_args()
    n, c = (int(v) for v in args.size.lower().split('x'))

    def compiled(fn):
        return torch.compile(fn, dynamic=True, options=functional._INDUCTOR_OPTIONS)

    variants = [('m = 0.05: p from float64 (ours)', 0.05, 'ours'),
                ('m = 0.05: p in float32', 0.05, 'float32 p'),
                ('m = 0: three exponentials', 0.0, 'three'),
                ('m = 0: one exponential (ours)', 0.0, 'ours'),
                ('m = 0: one exponential, e/(1+e)', 0.0, 'short')]
    # The timed loop writes what the kernel writes (the gradient and the sum); the element-wise loss for
    # the accuracy column comes from a separate compilation.
    rows = [(name, m, compiled(functools.partial(negative_loop, variant, m)),
             compiled(functools.partial(negative_loop, variant, m, elementwise=True)))
            for name, m, variant in variants]
    z = torch.randn(n, c, generator=torch.Generator().manual_seed(0)) * 3 - 4
    for _, _, fn, _ in rows:
        for _ in range(3):
            fn(z)
    times = {name: [] for name, _, _, _ in rows}
    for _ in range(args.repeats):  # interleaved: a slow stretch of the machine weighs on every row alike
        for name, _, fn, _ in rows:
            start = time.perf_counter()
            fn(z)
            times[name].append(time.perf_counter() - start)
    print(f'torch {torch.__version__}, threads {torch.get_num_threads()}, (N, C) = ({n}, {c}), '
          f'median of {args.repeats}, gamma- = {GAMMA:g}\n')
    print('| loop | time (ms) | max relative error of the loss vs float64 Eq. 7 |')
    print('|---|---:|---:|')
    for name, m, _, elementwise in rows:
        print(f'| {name} | {statistics.median(times[name]) * 1e3:.1f} | {max_rel_error(elementwise, m):.2e} |',
              flush=True)


if __name__ == '__main__':
    # Ten compilations of two functions: more than dynamo's default recompile limit of 8 per function.
    with torch._dynamo.config.patch(**functional._dynamo_settings()):
        main()

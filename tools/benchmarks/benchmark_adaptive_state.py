"""Benchmark: the fused loss with a per-class gamma- (and margin m) against the scalar ones, side by side.

Forward + backward of ``AsymmetricLoss`` (mean, index labels and dense targets) with gamma- and m given as
(i) the config's floats (constants of the kernel), (ii) 0-dim tensors (the global adaptive mode), (iii)
(C,) tensors (the per-class mode). One process, identical inputs; median of ``--repeats`` runs, interleaved
across rows, after ``--warmup`` runs; ratios against row (i).

    python tools/benchmarks/benchmark_adaptive_state.py --size 20000x80 --impl eager compiled
"""
import argparse
import statistics
import time

import torch

from mmdet_asl.models import AsymmetricLoss


def make_loss(mode: str, num_classes: int, impl: str, margin: bool) -> AsymmetricLoss:
    loss = AsymmetricLoss(gamma_pos=0.0, gamma_neg=4.0, clip=0.05, impl=impl)
    if mode == 'scalar tensor':
        loss.gamma_neg_dynamic, loss.clip_dynamic = True, margin
    elif mode == 'per class':
        loss.gamma_neg = torch.linspace(2.0, 6.0, num_classes, dtype=torch.float64)
        if margin:
            loss.clip = torch.linspace(0.0, 0.1, num_classes, dtype=torch.float64)
    return loss


def step(loss, z, target):
    z.grad = None
    loss(z, target).backward()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', default='20000x80')
    parser.add_argument('--impl', nargs='+', default=['eager'])
    parser.add_argument('--repeats', type=int, default=15)
    parser.add_argument('--warmup', type=int, default=3)
    args = parser.parse_args(argv)
    num, num_classes = (int(v) for v in args.size.lower().split('x'))
    torch.manual_seed(0)
    z = (torch.randn(num, num_classes) * 2 - 3).requires_grad_(True)
    labels = torch.randint(0, num_classes + 1, (num, ))
    dense = (torch.rand(num, num_classes) < 0.05).float()
    rows = {}
    for impl in args.impl:
        for target_name, target in (('index', labels), ('dense', dense)):
            for margin in (False, True):
                for mode in ('float', 'scalar tensor', 'per class'):
                    name = (impl, target_name, 'gamma- and m' if margin else 'gamma-', mode)
                    rows[name] = (make_loss(mode, num_classes, impl, margin), target)
    times = {name: [] for name in rows}
    for i in range(args.warmup + args.repeats):
        for name, (loss, target) in rows.items():
            start = time.perf_counter()
            step(loss, z, target)
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
    print(f'{num} x {num_classes}, forward + backward, median of {args.repeats} (ms); ratio to the float row')
    print('| impl | targets | adapted | given as | ms | ratio |\n|---|---|---|---|---:|---:|')
    for name in rows:
        base = statistics.median(times[name[:3] + ('float', )])
        median = statistics.median(times[name])
        print(f'| {" | ".join(name)} | {1000 * median:.2f} | {median / base:.2f} |')


if __name__ == '__main__':
    main()

#!/usr/bin/env python
"""Benchmark: one training iteration (data preprocessor, forward, loss, backward, SGD step) with and without
``ChannelsLastHook``: same config, same weights, same batch, one process, iterations alternating between
the two so that load changes on the machine hit both alike.

    python tools/benchmarks/benchmark_channels_last.py [--config configs/demo/fcos_effnet-lite0_asl_deepforest.py]
        [--reps 20] [--batch 4] [--threads T] [--device cpu|cuda]

The batch is the first batch of the config's training data (its annotation file must exist).
"""
import argparse
import copy
import os.path as osp
import statistics
import sys
import time

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmdet.registry import MODELS  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402

from mmdet_asl.engine.channels_last_hook import feed_channels_last  # noqa: E402
from tools.benchmarks.benchmark_fcos_iteration import real_batch, sync  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default='configs/demo/fcos_effnet-lite0_asl_deepforest.py')
    parser.add_argument('--reps', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--threads', type=int)
    parser.add_argument('--device', default='cpu', help='cpu or cuda')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    register_all_modules()
    cfg = Config.fromfile(args.config)
    if cfg.model.backbone.get('init_cfg') is not None:
        cfg.model.backbone.init_cfg = None  # no ImageNet file needed to time an iteration
    data, source = real_batch(cfg, args.batch)

    torch.manual_seed(0)
    models = {'NCHW': MODELS.build(copy.deepcopy(cfg.model)).to(args.device)}
    models['NHWC'] = copy.deepcopy(models['NCHW'])
    feed_channels_last(models['NHWC'])  # what ChannelsLastHook does before a run
    optims = {}
    for name, model in models.items():
        model.train()
        optims[name] = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    times = {name: [] for name in models}
    for it in range(args.warmup + args.reps):
        for name in (('NCHW', 'NHWC') if it % 2 == 0 else ('NHWC', 'NCHW')):
            sync(args.device)
            t0 = time.perf_counter()
            models[name].train_step(copy.deepcopy(data), optims[name])
            sync(args.device)
            if it >= args.warmup:
                times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f'config: {args.config}; data: {source}; batch {args.batch}; device {args.device}; '
          f'torch {torch.__version__}, {torch.get_num_threads()} threads; reps {args.reps}')
    for name, v in times.items():
        print(f'{name}: median {1000 * med[name]:.0f} ms/iter (min {1000 * min(v):.0f})')
    print(f'ratio NHWC / NCHW (medians): {med["NHWC"] / med["NCHW"]:.3f}')


if __name__ == '__main__':
    main()

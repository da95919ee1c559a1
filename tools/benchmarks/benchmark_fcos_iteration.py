#!/usr/bin/env python
"""Benchmark (a): one FCOS training iteration (data preprocessor, forward, loss, backward, SGD step) with ASL
vs FocalLoss, same config, same weights, same batch, one process. Iterations alternate between the two
models so that load changes on the machine hit both alike; the ratio of the medians is reported.

    python tools/benchmarks/benchmark_fcos_iteration.py [--config configs/demo/fcos_tresnet_asl_deepforest.py]
        [--reps 20] [--batch 4] [--size 320] [--num-classes N] [--threads T]

The ASL model is the config as given (its loss_cls must be AsymmetricLoss); the focal twin replaces loss_cls
with MMDetection's FocalLoss(gamma=2, alpha=0.25). The batch is the config's own training data when its
annotation file exists (first batch, fixed), else synthetic images with 20 random boxes each.
``--impl`` selects the ASL kernel: 'eager' (the loss's default) or 'compiled' (torch.compile).
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
from mmengine.structures import InstanceData

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmdet.models.losses import FocalLoss  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402

import mmdet_asl  # noqa: F401,E402

FOCAL = dict(type='PyFocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)


@MODELS.register_module(force=True)
class PyFocalLoss(FocalLoss):
    """MMDetection's FocalLoss on its Python path on every device (one-hot targets): on CUDA, index labels
    would select mmcv's compiled op, which a CPU-only mmcv build lacks."""

    def forward(self, pred, target, *args, **kwargs):
        if target.dim() == 1:
            target = torch.nn.functional.one_hot(target, pred.shape[1] + 1)[:, :pred.shape[1]]
        return super().forward(pred, target, *args, **kwargs)


def synthetic_batch(n, size, num_classes, boxes=20):
    g = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for i in range(n):
        inputs.append(torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g))
        xy = torch.rand(boxes, 2, generator=g) * (size - 64)
        wh = torch.rand(boxes, 2, generator=g) * 56 + 8
        s = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size), scale_factor=(1., 1.),
                                        pad_shape=(size, size), batch_input_shape=(size, size), img_id=i))
        s.gt_instances = InstanceData(bboxes=torch.cat([xy, xy + wh], 1),
                                      labels=torch.randint(0, num_classes, (boxes, ), generator=g))
        s.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples), 'synthetic'


def real_batch(cfg, n):
    from mmengine.runner import Runner
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    loader_cfg.update(batch_size=n, num_workers=0, persistent_workers=False)
    loader_cfg.sampler = dict(type='DefaultSampler', shuffle=False)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    return next(iter(loader)), f'first batch of {cfg.train_dataloader.dataset.ann_file}'


def sync(device):
    if device == 'cuda':
        torch.cuda.synchronize()


def loss_only(n, c, reps, warmup, impl, device='cpu'):
    x0 = (torch.randn(n, c) - 4.0).to(device)
    labels = torch.full((n, ), c, dtype=torch.long)
    pos = torch.randperm(n)[:max(1, n // 100)]
    labels[pos] = torch.randint(0, c, (len(pos), ))
    labels = labels.to(device)
    out = {}
    for name, cfg in (('focal', FOCAL), ('asl', dict(type='AsymmetricLoss', use_sigmoid=True, gamma_pos=1.0,
                                                     gamma_neg=2.0, clip=0.0, impl=impl))):
        fn = MODELS.build(cfg)
        ts = []
        for it in range(warmup + reps):
            x = x0.clone().requires_grad_()
            sync(device)
            t0 = time.perf_counter()
            fn(x, labels, avg_factor=float(len(pos))).backward()
            sync(device)
            if it >= warmup:
                ts.append(time.perf_counter() - t0)
        out[name] = statistics.median(ts)
    print(f"loss_cls fwd+bwd on ({n}, {c}) logits, {torch.get_num_threads()} threads, "
          f"ASL impl={impl}: "
          f"focal {1000 * out['focal']:.1f} ms, ASL {1000 * out['asl']:.1f} ms, ratio {out['asl'] / out['focal']:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default='configs/demo/fcos_tresnet_asl_deepforest.py')
    parser.add_argument('--reps', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--size', type=int, default=320, help='synthetic image side')
    parser.add_argument('--num-classes', type=int, help='override num_classes (synthetic data)')
    parser.add_argument('--synthetic', action='store_true', help='do not use the config data')
    parser.add_argument('--threads', type=int)
    parser.add_argument('--impl', choices=('eager', 'compiled'), default='eager', help='the ASL kernel')
    parser.add_argument('--device', default='cpu', help='cpu or cuda')
    parser.add_argument('--loss-only', type=int, nargs=2, metavar=('N', 'C'),
                        help='only time loss_cls fwd+bwd on (N, C) logits (e.g. 44788 80: FCOS points of two '
                        '800x1344 COCO images), focal vs ASL gamma+=1, gamma-=2, m=0; no model is built')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    register_all_modules()
    if args.loss_only:
        return loss_only(*args.loss_only, reps=args.reps, warmup=args.warmup, impl=args.impl, device=args.device)
    cfg = Config.fromfile(args.config)
    if cfg.model.backbone.get('init_cfg') is not None:
        cfg.model.backbone.init_cfg = None  # no ImageNet file needed to time an iteration
    if args.num_classes:
        cfg.model.bbox_head.num_classes = args.num_classes
    assert cfg.model.bbox_head.loss_cls.type == 'AsymmetricLoss', 'give the ASL config'
    cfg.model.bbox_head.loss_cls.impl = args.impl
    ann = osp.join(cfg.train_dataloader.dataset.get('data_root', ''), cfg.train_dataloader.dataset.ann_file)
    if not args.synthetic and osp.exists(ann) and not args.num_classes:
        data, source = real_batch(cfg, args.batch)
    else:
        data, source = synthetic_batch(args.batch, args.size, cfg.model.bbox_head.num_classes)

    torch.manual_seed(0)
    models, optims = {}, {}
    asl_cfg = copy.deepcopy(cfg.model)
    focal_cfg = copy.deepcopy(cfg.model)
    focal_cfg.bbox_head.loss_cls = FOCAL
    for name, mcfg in (('asl', asl_cfg), ('focal', focal_cfg)):
        models[name] = MODELS.build(mcfg).to(args.device)
    models['asl'].init_weights()
    models['focal'].load_state_dict(models['asl'].state_dict(), strict=False)
    for name, model in models.items():
        model.train()
        optims[name] = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    times = {name: [] for name in models}
    for it in range(args.warmup + args.reps):
        order = ('asl', 'focal') if it % 2 == 0 else ('focal', 'asl')
        for name in order:
            sync(args.device)
            t0 = time.perf_counter()
            models[name].train_step(copy.deepcopy(data), optims[name])
            sync(args.device)
            dt = time.perf_counter() - t0
            if it >= args.warmup:
                times[name].append(dt)
    med = {k: statistics.median(v) for k, v in times.items()}
    n_loc = None
    print(f'config: {args.config}; data: {source}; batch {args.batch}; classes {cfg.model.bbox_head.num_classes}; '
          f'torch {torch.__version__}, {torch.get_num_threads()} threads; '
          f'ASL impl={args.impl}; reps {args.reps}')
    for k in ('focal', 'asl'):
        v = times[k]
        print(f'{k:>5}: median {1000 * med[k]:.0f} ms/iter (mean {1000 * statistics.mean(v):.0f}, '
              f'min {1000 * min(v):.0f})')
    print(f'ratio ASL / Focal (medians): {med["asl"] / med["focal"]:.3f}  '
          f'(min: {min(times["asl"]) / min(times["focal"]):.3f})')
    # The classification loss alone, forward + backward, on FCOS's own (N, C) logits and index labels.
    head = models['asl'].bbox_head
    shape = data['inputs'][0].shape[-2:]
    n_loc = len(data['inputs']) * sum(-(-shape[0] // s) * -(-shape[1] // s) for s in head.strides)
    logits = (torch.randn(n_loc, head.num_classes) - 4.0).to(args.device)
    labels = torch.full((n_loc, ), head.num_classes, dtype=torch.long)
    labels[torch.randperm(n_loc)[:max(1, n_loc // 100)]] = 0
    labels = labels.to(args.device)
    loss_t = {}
    for name, model in models.items():
        fn = model.bbox_head.loss_cls
        ts = []
        for it in range(args.warmup + 4 * args.reps):
            x = logits.clone().requires_grad_()
            sync(args.device)
            t0 = time.perf_counter()
            fn(x, labels, avg_factor=float(n_loc // 100)).backward()
            sync(args.device)
            if it >= args.warmup:
                ts.append(time.perf_counter() - t0)
        loss_t[name] = statistics.median(ts)
    print(f'loss_cls alone, fwd+bwd on ({n_loc}, {head.num_classes}) logits: focal {1000 * loss_t["focal"]:.2f} ms, '
          f'ASL {1000 * loss_t["asl"]:.2f} ms; difference {1000 * (loss_t["asl"] - loss_t["focal"]):+.2f} ms = '
          f'{100 * (loss_t["asl"] - loss_t["focal"]) / med["focal"]:+.2f}% of a focal iteration')
    return n_loc


if __name__ == '__main__':
    main()

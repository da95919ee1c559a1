#!/usr/bin/env python
"""Benchmark (b): ASL vs FocalLoss box mAP on the DeepForest demo over several seeds (mean +- std).

Trains the demo configs (configs/demo/fcos_tresnet_{focal,asl}_deepforest.py; identical but for loss_cls)
once per seed and variant with tools/train.py, reads the final COCO metrics from each work dir and writes
``work_dirs/seeds/results.json`` plus a Markdown table. Variants:

    focal      FocalLoss gamma=2, alpha=0.25 (MMDetection's baseline)
    asl_m0     ASL gamma+=1, gamma-=2, clip m=0      (the shipped demo/flagship setting)
    asl_m005   ASL gamma+=1, gamma-=2, clip m=0.05   (the classification default margin)

    python tools/experiment_detection_seeds.py --seeds 0 1 2 [--variants focal asl_m0 asl_m005]
    python tools/experiment_detection_seeds.py --probe-margin   # seconds: what m does at initialisation

Runs already in results.json are skipped (the script can be resumed). The loss runs eagerly
(MMDET_ASL_COMPILE=0) unless the environment says otherwise.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
VARIANTS = {
    'focal': ('configs/demo/fcos_tresnet_focal_deepforest.py', []),
    'asl_m0': ('configs/demo/fcos_tresnet_asl_deepforest.py', ['model.bbox_head.loss_cls.clip=0.0']),
    'asl_m005': ('configs/demo/fcos_tresnet_asl_deepforest.py', ['model.bbox_head.loss_cls.clip=0.05']),
}
KEYS = ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75')


def final_metrics(work_dir):
    """The last ``coco/bbox_mAP*`` entry in the run's vis_data/scalars.json."""
    found = None
    for root, _, files in os.walk(work_dir):
        if 'scalars.json' in files:
            with open(osp.join(root, 'scalars.json')) as f:
                for line in f:
                    rec = json.loads(line)
                    if 'coco/bbox_mAP' in rec:
                        found = {k: 100.0 * rec[f'coco/{k}'] for k in KEYS}
    return found


def table(results, variants):
    lines = ['| variant | seeds | box AP | AP50 | AP75 | per-seed AP |', '|---|---|---|---|---|---|']
    for v in variants:
        runs = [r for r in results if r['variant'] == v]
        if not runs:
            continue
        cells = []
        for k in KEYS:
            vals = [r[k] for r in runs]
            sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
            cells.append(f'{statistics.mean(vals):.1f} ± {sd:.1f}')
        per_seed = ', '.join(f"{r['bbox_mAP']:.1f}" for r in sorted(runs, key=lambda r: r['seed']))
        lines.append(f"| {v} | {len(runs)} | {' | '.join(cells)} | {per_seed} |")
    return '\n'.join(lines)


def probe_margin(clips=(0.0, 0.05), batch=4):
    """At initialisation, on the first demo batch: share of negative (location, class) scores below each margin
    m (zero ASL loss and gradient there) and the norm of d loss_cls / d logits for ASL with that m."""
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner
    sys.path.insert(0, ROOT)
    import mmdet_asl  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(VARIANTS['asl_m0'][0])
    loader_cfg = cfg.train_dataloader
    loader_cfg.update(batch_size=batch, sampler=dict(type='DefaultSampler', shuffle=False))
    data = next(iter(Runner.build_dataloader(loader_cfg, seed=0)))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    data = model.data_preprocessor(data, True)
    head = model.bbox_head
    cls_scores, bbox_preds, centerness = head(model.extract_feat(data['inputs']))
    captured = {}
    orig = head.loss_cls.forward

    def capture(pred, target, *a, **k):
        captured.update(pred=pred.detach(), target=target, kwargs=k)
        return orig(pred, target, *a, **k)
    head.loss_cls.forward = capture
    gts = [s.gt_instances for s in data['data_samples']]
    metas = [s.metainfo for s in data['data_samples']]
    head.loss_by_feat(cls_scores, bbox_preds, centerness, gts, metas)
    pred, target = captured['pred'], captured['target']
    neg = target == head.num_classes
    p = pred.sigmoid()[neg]
    print(f'{pred.shape[0]} locations, {int((~neg).sum())} positive; initial negative score: '
          f'mean {p.mean():.4f}, max {p.max():.4f}')
    for clip in clips:
        fn = MODELS.build(dict(cfg.model.bbox_head.loss_cls, clip=clip))
        x = pred.clone().requires_grad_()
        fn(x, target, **captured['kwargs']).backward()
        g = x.grad
        print(f'm={clip}: {100 * float((p < clip).float().mean()):.1f}% of negatives below m; '
              f'|grad| negatives {g[neg].norm():.4g}, positives {g[~neg].norm():.4g}')


def main():
    if '--probe-margin' in sys.argv:
        os.chdir(ROOT)
        return probe_margin()
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument('--out', default='work_dirs/seeds')
    parser.add_argument('--cfg-options', nargs='*', default=[], help='extra overrides for every run')
    args = parser.parse_args()
    os.chdir(ROOT)
    os.makedirs(args.out, exist_ok=True)
    res_file = osp.join(args.out, 'results.json')
    results = json.load(open(res_file)) if osp.exists(res_file) else []
    env = dict(os.environ)
    env.setdefault('MMDET_ASL_COMPILE', '0')
    for seed in args.seeds:  # interleaved, so a partial run is balanced
        for v in args.variants:
            if any(r['variant'] == v and r['seed'] == seed for r in results):
                continue
            config, opts = VARIANTS[v]
            work_dir = osp.join(args.out, f'{v}_seed{seed}')
            cmd = [sys.executable, 'tools/train.py', config, '--work-dir', work_dir, '--cfg-options',
                   f'randomness.seed={seed}', *opts, *args.cfg_options]
            print('$', ' '.join(cmd), flush=True)
            t0 = time.time()
            with open(osp.join(args.out, f'{v}_seed{seed}.log'), 'w') as log:
                subprocess.check_call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            metrics = final_metrics(work_dir)
            if metrics is None:
                raise RuntimeError(f'no COCO metrics found in {work_dir}')
            results.append(dict(variant=v, seed=seed, train_s=round(time.time() - t0, 1), **metrics))
            json.dump(results, open(res_file, 'w'), indent=1)
            print(f"{v} seed {seed}: box AP {metrics['bbox_mAP']:.1f} ({time.time() - t0:.0f} s)", flush=True)
    md = table(results, args.variants)
    open(osp.join(args.out, 'results.md'), 'w').write(md + '\n')
    print(md)


if __name__ == '__main__':
    main()

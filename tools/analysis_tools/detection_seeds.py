#!/usr/bin/env python
"""ASL vs FocalLoss, fine-tuned: box AP of the DeepForest demo over several seeds (mean +- sample std).

Fine-tunes the demo configs (configs/demo/fcos_effnet-lite0_{focal,asl}_deepforest.py, identical but for
loss_cls) once per seed and variant with tools/train.py, tests each checkpoint three times with tools/test.py,
at the config's ``test_cfg.score_thr``, at 0.001 (a difference that vanishes at 0.001 is one of calibration,
scores under the threshold, not of ranking) and with the config's test-time augmentation (``--tta``), and logs
Delta p = p_t+ - p_t- of the head's classification loss (``ProbabilityGapHook``, probe only; paper Eq. 9-10).
Variants:

    focal      FocalLoss gamma 2, alpha 0.25, run as AsymmetricLoss(gamma+ = gamma- = 2, m = 0, alpha 0.25),
               which gives FocalLoss's values and gradients (tests/test_detection_focal_equivalence.py) and
               lets the probe read Delta p
    asl_m0     ASL gamma+ 1, gamma- 2, m 0 (the paper's detection setting; the demo)
    asl_m005   ASL gamma+ 1, gamma- 2, m 0.05
    asl_a025   ASL gamma+ 1, gamma- 2, m 0 with focal loss's alpha 0.25 (positives x0.25, negatives x0.75):
               tells the effect of alpha from that of gamma+ (not run by default)
    gfl_qfl    GFL head (configs/demo/gfl_effnet-lite0_qfl_deepforest.py): QualityFocalLoss beta 2
    gfl_aqfl   its twin with AsymmetricQualityFocalLoss gamma+ 2, gamma- 4, m 0
    gfl_aqfl_g2  AsymmetricQualityFocalLoss gamma+ = gamma- = 2, m 0: QFL's values through the asymmetric code
               (the GFL variants are not probed: Delta p is logged for AsymmetricLoss heads)

    python tools/analysis_tools/detection_seeds.py --seeds 0 1 2 [--variants ...] [--epochs 30] [--jobs 2]
    python tools/analysis_tools/detection_seeds.py --probe-margin   # seconds: what m does at initialisation

Results go to ``--out`` (``results.json``, resumable, and ``results.md``). ``--epochs`` shortens the schedule
(warm-up kept, x0.1 at 80 %); the table says which schedule it was.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from mmdet_asl.utils.strict_json import dump_json, dumps_json, load_json  # noqa: E402

FOCAL_CFG = 'configs/demo/fcos_effnet-lite0_focal_deepforest.py'
ASL_CFG = 'configs/demo/fcos_effnet-lite0_asl_deepforest.py'
VARIANTS = {
    'focal': (ASL_CFG, ['model.bbox_head.loss_cls.gamma_pos=2.0', 'model.bbox_head.loss_cls.alpha=0.25']),
    'asl_m0': (ASL_CFG, ['model.bbox_head.loss_cls.clip=0.0']),
    'asl_m005': (ASL_CFG, ['model.bbox_head.loss_cls.clip=0.05']),
    'asl_a025': (ASL_CFG, ['model.bbox_head.loss_cls.clip=0.0', 'model.bbox_head.loss_cls.alpha=0.25']),
    'gfl_qfl': ('configs/demo/gfl_effnet-lite0_qfl_deepforest.py', []),
    'gfl_aqfl': ('configs/demo/gfl_effnet-lite0_aqfl_deepforest.py', []),
    'gfl_aqfl_g2': ('configs/demo/gfl_effnet-lite0_aqfl_deepforest.py', ['model.bbox_head.loss_cls.gamma_neg=2.0']),
}
NOT_PROBED = ('gfl_qfl', 'gfl_aqfl', 'gfl_aqfl_g2')
DEFAULT_VARIANTS = ['focal', 'asl_m0', 'asl_m005']
# evaluation passes: the config's score_thr, score_thr 0.001, and the config's test-time augmentation
EVALUATIONS = ('config', 0.001, 'tta')
KEYS = ('AP', 'AP50')


def schedule_options(epochs):
    if epochs is None:
        return []
    return [f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={epochs}',
            f'param_scheduler.1.end={epochs}', f'param_scheduler.1.milestones=[{max(1, round(0.8 * epochs))}]',
            f'default_hooks.checkpoint.interval={epochs}']


def mean_dp(work_dir, last=20):
    """Mean Delta p over the last ``last`` logged iterations (scalars.json)."""
    values = []
    for root, _, files in os.walk(work_dir):
        if 'scalars.json' in files:
            with open(osp.join(root, 'scalars.json')) as f:
                values += [json.loads(line)['asl_dp'] for line in f if '"asl_dp"' in line]
    return statistics.mean(values[-last:]) if values else float('nan')


def write_probed_config(config, path):
    """Write ``path``: ``config`` with ``ProbabilityGapHook`` (Delta p every iteration) after its own hooks."""
    from mmdet_asl.utils.configs import write_config_with_hook
    return write_config_with_hook(path, config, dict(type='ProbabilityGapHook'))


def run_one(variant, seed, args, env):
    config, opts = VARIANTS[variant]
    work_dir = osp.join(args.out, f'{variant}_seed{seed}')
    common = [f'randomness.seed={seed}', *opts, *schedule_options(args.epochs)]
    os.makedirs(work_dir, exist_ok=True)
    probed = config if variant in NOT_PROBED else write_probed_config(osp.join(ROOT, config),
                                                                        osp.join(work_dir, 'probed_config.py'))
    log = open(osp.join(args.out, f'{variant}_seed{seed}.log'), 'w')
    t0 = time.time()
    subprocess.check_call([sys.executable, 'tools/train.py', probed, '--work-dir', work_dir, '--cfg-options',
                           *common, 'default_hooks.logger.interval=1'], stdout=log, stderr=subprocess.STDOUT,
                          env=env)
    train_s = time.time() - t0
    ckpt = sorted((f for f in os.listdir(work_dir) if f.startswith('epoch_')), key=lambda f: os.stat(
        osp.join(work_dir, f)).st_mtime)[-1]
    row = dict(variant=variant, seed=seed, epochs=args.epochs, train_s=round(train_s, 1), dp=mean_dp(work_dir))
    for ev in EVALUATIONS:
        out = osp.join(work_dir, f'coco_bbox_thr{ev}.json')
        flags = ['--tta'] if ev == 'tta' else []
        extra = [] if ev in ('config', 'tta') else [f'model.test_cfg.score_thr={ev}']
        subprocess.check_call([sys.executable, 'tools/test.py', config, osp.join(work_dir, ckpt), '--work-dir',
                               work_dir, '--json', out, *flags, '--cfg-options', *common, *extra],
                              stdout=log, stderr=subprocess.STDOUT, env=env)
        box = load_json(out)  # an undefined metric (null) reads as NaN
        row.update({f'{k}@{ev}': float(box[k]) for k in KEYS})
    return row


def mean_sd(values):
    sd = statistics.stdev(values) if len(values) > 1 else float('nan')
    return f'{statistics.mean(values):.1f} ± {sd:.1f}'


def table(results, variants):
    cols = [f'{k}@{t}' for t in EVALUATIONS for k in KEYS]
    names = [f'{k} ({"TTA" if t == "tta" else f"thr {t}"})' for t in EVALUATIONS for k in KEYS]
    lines = ['| variant | seeds | ' + ' | '.join(names) + ' | Δp (last 20 it.) | per-seed AP |',
             '|---|---|' + '---|' * (len(cols) + 2)]
    for v in variants:
        runs = sorted((r for r in results if r['variant'] == v), key=lambda r: r['seed'])
        if runs:
            cells = [mean_sd([r[c] for r in runs]) if all(c in r for r in runs) else '' for c in cols]
            dp = statistics.mean(r['dp'] for r in runs)
            per_seed = ', '.join(f"{r['AP@config']:.1f}" for r in runs)
            dp_cell = 'n/a' if dp != dp else f'{dp:.3f}'  # NaN: a variant that is not probed
            lines.append(f"| {v} | {len(runs)} | {' | '.join(cells)} | {dp_cell} | {per_seed} |")
    return '\n'.join(lines)


def probe_margin(clips=(0.0, 0.05), batch=4):
    """At initialisation, on the first demo batch: share of negative (location, class) scores below each margin
    m (zero ASL loss and gradient there) and the norm of d loss_cls / d logits for ASL with that m."""
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    import mmdet_asl  # noqa: F401
    register_all_modules()
    cfg = Config.fromfile(VARIANTS['asl_m0'][0])
    cfg.model.backbone.init_cfg.checkpoint = osp.join(ROOT, cfg.model.backbone.init_cfg.checkpoint)
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
    parser.add_argument('--variants', nargs='+', default=DEFAULT_VARIANTS, choices=list(VARIANTS))
    parser.add_argument('--epochs', type=int, help='shorter schedule than the config (default: the config)')
    parser.add_argument('--out', default='work_dirs/seeds')
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs at a time; each gets cpu_count // jobs threads unless OMP_NUM_THREADS is set')
    args = parser.parse_args()
    os.chdir(ROOT)
    os.makedirs(args.out, exist_ok=True)
    res_file = osp.join(args.out, 'results.json')
    results = load_json(res_file) if osp.exists(res_file) else []
    env = dict(os.environ)
    env.setdefault('MMDET_ASL_COMPILE', '0')
    if args.jobs > 1:
        threads = str(max(1, (os.cpu_count() or 1) // args.jobs))
        env.setdefault('OMP_NUM_THREADS', threads)
        env.setdefault('MKL_NUM_THREADS', threads)
    todo = [(v, seed) for seed in args.seeds for v in args.variants  # interleaved, so a partial run is balanced
            if not any(r['variant'] == v and r['seed'] == seed and r['epochs'] == args.epochs for r in results)]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for done in as_completed([pool.submit(run_one, v, seed, args, env) for v, seed in todo]):
            row = done.result()
            results.append(row)
            dump_json(results, res_file, indent=1)
            print(dumps_json(row), flush=True)
    md = table([r for r in results if r['epochs'] == args.epochs], args.variants)
    open(osp.join(args.out, 'results.md'), 'w').write(md + '\n')
    print(md)


if __name__ == '__main__':
    main()

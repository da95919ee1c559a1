#!/usr/bin/env python
"""Long-tailed detection: focal loss, Equalized Focal Loss and ASL variants over several seeds, with the AP of
the rare / common / frequent class groups and the per-class focusing at the end of training.

Fine-tunes the main job's recipe (FCOS + EfficientNet-Lite0) on the long-tailed detection canvases
(``configs/demo/fcos_effnet-lite0_*_fashion-longtail.py``, identical but for ``loss_cls`` and
``custom_hooks``) once per seed and variant with ``tools/train.py``, validating on the balanced test split
every ``--val-interval`` epochs (no checkpoint is selected: the table reads the last evaluation; the earlier
ones draw the learning curves). Variants:

    focal        FocalLoss gamma 2, alpha 0.25, run as AsymmetricLoss(gamma+ = gamma- = 2, m = 0, alpha 0.25),
                 which gives FocalLoss's values and gradients and lets the probe read Delta p
    efl          EqualizedFocalLoss gamma_b 2, s 8, alpha 0.25 (not probed: Delta p is read from AsymmetricLoss)
    asl          ASL gamma+ 1, gamma- 2, m 0 (the paper's detection setting)
    asl_adaptive     ASL with one gamma- adapted towards Delta p = 0 (ProbabilityGapHook, Eq. 11)
    asl_perclass     ASL with a gamma- per class adapted towards Delta p = 0
    asl_perclass_m   asl_perclass with the margin m adapted per class too (not run by default)

    python tools/dataset_converters/make_longtail_canvases.py --task detection
    python tools/analysis_tools/longtail_detection.py --seeds 0 1 2 --jobs 2

Each finished run is a row of ``<out>/results.json`` (a rerun skips it; ``--force`` retrains), with the
SHA-256 of the full config MMEngine dumped into the run's folder and the machine's load average before and
after. ``<out>/results.md`` holds the table (mean +- sample std over the seeds, per-seed AP), and the figures
``fig_longtail_det_curves.png`` (AP on the test split against the epoch, first seed of each variant) and
``fig_longtail_det_gamma.png`` (final per-class gamma- of ``asl_perclass`` and EFL's gamma_j against the
class's training instances) are written to ``<out>``.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from training_runs import ROOT, read_scalars, run_all, thread_env, train  # noqa: E402

from mmdet_asl.utils.strict_json import load_json  # noqa: E402

DATA = 'data/fashion_canvas_longtail_det'
FOCAL_CFG = 'configs/demo/fcos_effnet-lite0_focal_fashion-longtail.py'
EFL_CFG = 'configs/demo/fcos_effnet-lite0_efl_fashion-longtail.py'
ASL_CFG = 'configs/demo/fcos_effnet-lite0_asl_fashion-longtail.py'
PERCLASS_CFG = 'configs/demo/fcos_effnet-lite0_asl-adaptive-perclass_fashion-longtail.py'
ITERS_PER_EPOCH = 360  # 1438 training canvases, batch 4
ADAPTIVE = dict(target=0.0, lam=0.01, warmup_iters=ITERS_PER_EPOCH)
# name -> (config, --cfg-options, ProbabilityGapHook settings: None = not probed, {} = probe only)
VARIANTS = {
    'focal': (ASL_CFG, ['model.bbox_head.loss_cls.gamma_pos=2.0', 'model.bbox_head.loss_cls.alpha=0.25'], {}),
    'efl': (EFL_CFG, [], None),
    'asl': (ASL_CFG, [], {}),
    'asl_adaptive': (ASL_CFG, [], dict(adaptive=ADAPTIVE)),
    'asl_perclass': (PERCLASS_CFG, [], dict(adaptive=dict(ADAPTIVE, per_class=True))),
    'asl_perclass_m': (PERCLASS_CFG, [], dict(adaptive=dict(ADAPTIVE, per_class=True, adapt=('gamma_neg', 'clip'),
                                                            clip_lam=0.0005))),
}
DEFAULT_VARIANTS = ['focal', 'efl', 'asl', 'asl_adaptive', 'asl_perclass']
GROUPS = ('r', 'c', 'f')


def schedule_options(epochs, val_interval):
    """--cfg-options for ``epochs`` epochs (warm-up kept, x0.1 at 80 %), validating every ``val_interval``."""
    return [f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={val_interval}',
            f'param_scheduler.1.end={epochs}', f'param_scheduler.1.milestones=[{max(1, round(0.8 * epochs))}]',
            f'default_hooks.checkpoint.interval={epochs}']


def load_classes(data=DATA):
    """[(name, frequency group, training instances)] in the dataset's class order (``longtail_summary.json``)."""
    summary = load_json(osp.join(ROOT, data, 'annotations', 'longtail_summary.json'))
    classes = sorted(summary['classes'], key=lambda c: c['id'])
    return [(c['name'], c['frequency'], c['train_instances']) for c in classes]


def group_ap(metrics, classes):
    """AP (in %) of each frequency group and of all classes: the mean of the per-class COCO APs
    (``coco/<class>_precision``, CocoMetric's ``classwise``), as LVIS averages AP_r over the rare classes.
    A class whose AP is undefined (-1: no test instance) is left out of its group."""
    out = {}
    for group in GROUPS + (None, ):
        aps = [metrics[f'coco/{name}_precision'] for name, g, _ in classes if group in (None, g)]
        aps = [100 * a for a in aps if a >= 0]
        out['AP' + (group or '_classes')] = statistics.mean(aps) if aps else float('nan')
    return out


def val_curve(scalars):
    """[(epoch, AP, AP50)] in % from the validation lines (those with ``coco/bbox_mAP``), in epoch order."""
    return sorted((s['step'], 100 * s['coco/bbox_mAP'], 100 * s['coco/bbox_mAP_50'])
                  for s in scalars if 'coco/bbox_mAP' in s)


def mean_dp(scalars, last=20):
    values = [s['asl_dp'] for s in scalars if 'asl_dp' in s]
    return statistics.mean(values[-last:]) if values else float('nan')


def final_gammas(work_dir, variant, checkpoint):
    """The per-class focusing at the end: gamma- of each class (per-class ASL, last line of the per-class log)
    or EFL's gamma_j (from the checkpoint's gradient statistics); None for the other variants."""
    if variant == 'efl':
        import torch

        from mmdet_asl.compat import load_checkpoint_safely
        from mmdet_asl.models.losses import EqualizedFocalLoss
        state = load_checkpoint_safely(checkpoint, map_location='cpu')['state_dict']
        loss = EqualizedFocalLoss(num_classes=state['bbox_head.loss_cls.pos_grad'].numel())
        loss.pos_grad.copy_(state['bbox_head.loss_cls.pos_grad'].to(torch.float64))
        loss.neg_grad.copy_(state['bbox_head.loss_cls.neg_grad'].to(torch.float64))
        return loss.class_gamma().tolist()
    if VARIANTS[variant][2] and VARIANTS[variant][2].get('adaptive', {}).get('per_class'):
        last = None
        for root, _, files in os.walk(work_dir):
            if 'probability_gap_per_class.jsonl' in files:
                with open(osp.join(root, 'probability_gap_per_class.jsonl')) as f:
                    lines = [json.loads(line) for line in f if line.strip()]
                last = lines[-1] if lines else last
        return None if last is None else last['gamma_neg']
    return None


def write_run_config(variant, path):
    """The run's config: the variant's config with its ``ProbabilityGapHook`` (keeping the config's other hooks)."""
    from mmdet_asl.utils.configs import write_config_with_hook
    config, _, probe = VARIANTS[variant]
    hook = None if probe is None else dict(type='ProbabilityGapHook', per_class_interval=ITERS_PER_EPOCH, **probe)
    return write_config_with_hook(path, osp.join(ROOT, config), hook)


def run_one(variant, seed, args, env, classes):
    name = f'{variant}_seed{seed}'
    work_dir = osp.join(args.out, name)
    os.makedirs(osp.join(args.out, 'run_configs'), exist_ok=True)
    config = write_run_config(variant, osp.join(args.out, 'run_configs', name + '.py'))
    options = [f'randomness.seed={seed}', *VARIANTS[variant][1], *schedule_options(args.epochs, args.val_interval),
               f'default_hooks.logger.interval={args.log_interval}']
    run = train(config, work_dir, options, osp.join(args.out, name + '.log'), env)
    scalars = read_scalars(work_dir)
    final = [s for s in scalars if 'coco/bbox_mAP' in s][-1]
    curve = val_curve(scalars)
    return dict(variant=variant, seed=seed, epochs=args.epochs, AP=curve[-1][1], AP50=curve[-1][2],
                **group_ap(final, classes), dp=mean_dp(scalars), curve=curve,
                gammas=final_gammas(work_dir, variant, osp.join(work_dir, f'epoch_{args.epochs}.pth')), **run)


def pending(results, variants, seeds, epochs, force=False):
    """The (variant, seed) runs still to do, seed-major (a partial grid stays balanced over the variants)."""
    done = set() if force else {(r['variant'], r['seed']) for r in results if r['epochs'] == epochs}
    return [(v, s) for s in seeds for v in variants if (v, s) not in done]


def mean_sd(values):
    values = [v for v in values if v == v]
    if not values:
        return 'n/a'
    sd = statistics.stdev(values) if len(values) > 1 else float('nan')
    return f'{statistics.mean(values):.1f} ± {sd:.1f}'


def table(results, variants):
    cols = ('AP', 'AP50', 'APr', 'APc', 'APf')
    lines = ['| variant | seeds | ' + ' | '.join(cols) + ' | Δp (last 20 it.) | per-seed AP | per-seed APr |',
             '|---|---|' + '---|' * (len(cols) + 3)]
    for v in variants:
        runs = sorted((r for r in results if r['variant'] == v), key=lambda r: r['seed'])
        if not runs:
            continue
        dps = [r['dp'] for r in runs if r['dp'] == r['dp']]
        dp = f'{statistics.mean(dps):.3f}' if dps else 'n/a'
        per_seed = [', '.join(f'{r[key]:.1f}' for r in runs) for key in ('AP', 'APr')]
        cells = [mean_sd([r[c] for r in runs]) for c in cols]
        lines.append(f"| {v} | {len(runs)} | {' | '.join(cells)} | {dp} | {per_seed[0]} | {per_seed[1]} |")
    return '\n'.join(lines)


def figures(results, classes, out):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for v in dict.fromkeys(r['variant'] for r in results):
        first = min((r for r in results if r['variant'] == v), key=lambda r: r['seed'])
        ep, ap, _ = zip(*first['curve'])
        ax.plot(ep, ap, marker='o', label=f"{v} (seed {first['seed']})")
    ax.set(xlabel='epoch', ylabel='box AP on the test split (%)', title='Long-tailed detection canvases')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(osp.join(out, 'fig_longtail_det_curves.png'), dpi=120)
    plt.close(fig)
    counts = [n for _, _, n in classes]
    fig, ax = plt.subplots(figsize=(6, 4))
    for v, label, marker in (('asl_perclass', 'ASL per-class γ− (final)', 'o'), ('efl', 'EFL γ_j (final)', 's'),
                             ('asl_perclass_m', 'ASL per-class γ− with adapted m', '^')):
        runs = [r for r in results if r['variant'] == v and r['gammas']]
        if runs:
            mean = [statistics.mean(r['gammas'][j] for r in runs) for j in range(len(counts))]
            ax.scatter(counts, mean, marker=marker, label=f'{label}, mean of {len(runs)} seeds')
    ax.set_xscale('log')
    ax.set(xlabel='training instances of the class', ylabel='focusing exponent at the end of training')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(osp.join(out, 'fig_longtail_det_gamma.png'), dpi=120)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--variants', nargs='+', default=DEFAULT_VARIANTS, choices=list(VARIANTS))
    parser.add_argument('--epochs', type=int, default=12, help='training epochs (x0.1 at 80 %%); default 12')
    parser.add_argument('--val-interval', type=int, default=2, help='epochs between evaluations (the curves)')
    parser.add_argument('--log-interval', type=int, default=20, help='iterations between logged lines')
    parser.add_argument('--out', default='work_dirs/longtail_det')
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs at a time; each gets cpu_count // jobs threads unless OMP_NUM_THREADS is set')
    parser.add_argument('--force', action='store_true', help='retrain runs already in results.json')
    args = parser.parse_args()
    if args.epochs % args.val_interval:
        parser.error(f'--epochs {args.epochs} must be a multiple of --val-interval {args.val_interval}: the '
                     'table reads the evaluation after the last epoch')
    args.out = osp.abspath(args.out)
    os.makedirs(args.out, exist_ok=True)
    classes = load_classes()
    res_file = osp.join(args.out, 'results.json')
    results = load_json(res_file) if osp.exists(res_file) else []
    env = thread_env(args.jobs)
    todo = pending(results, args.variants, args.seeds, args.epochs, args.force)
    if args.force:
        results = [r for r in results if (r['variant'], r['seed']) not in set(todo) or r['epochs'] != args.epochs]
    run_all(run_one, [(v, s, args, env, classes) for v, s in todo], args.jobs, results, res_file,
            not_printed=('curve', 'gammas'))
    kept = [r for r in results if r['epochs'] == args.epochs and r['variant'] in args.variants]
    md = table(kept, args.variants)
    with open(osp.join(args.out, 'results.md'), 'w') as f:
        f.write(md + '\n')
    if kept:
        figures(kept, classes, args.out)
    print(md)


if __name__ == '__main__':
    main()

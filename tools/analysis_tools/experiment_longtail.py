#!/usr/bin/env python
"""Per-class adaptive asymmetry on long-tailed canvases: focal, fixed ASL, global adaptive, per-class
adaptive, per-class adaptive + adaptive margin and Equalized Focal Loss, several seeds each.

Every run trains the ``--model``'s config with the loss and ``ProbabilityGapHook`` of its method, through
``tools/train.py`` in a subprocess, and validates on the test split every ``--val-interval`` epochs (default:
once, at the end; the last evaluation is the result, the earlier ones draw the learning curves):

* ``resnet18-w16``: ``configs/multilabel/resnet18-w16_asl-adaptive-perclass_1xb64_fashion-canvas-longtail.py``,
  a narrow ResNet-18 from scratch on the 64 px long-tailed canvases (``data/fashion_canvas_longtail``);
* ``effnet-lite0``: ``configs/multilabel/effnet-lite0_asl-adaptive-perclass_1xb32_fashion-canvas-longtail-128px.py``,
  ImageNet EfficientNet-Lite0 fine-tuned on the 128 px long-tailed canvases
  (``data/fashion_canvas_longtail_128``).

``efl`` is ``EqualizedFocalLoss`` (gamma_b 2, s 8) with alpha 0.5 and loss weight 2, which is the ``focal``
method's loss exactly when s = 0 (multi-label classification has no background to balance with alpha), so the
two differ only by the per-class focusing and weighting. It reports mAP, the mAP over the rarest third of the
classes (by train frequency), CF1, and the final gamma- per class (EFL: gamma_j), as mean +- standard deviation
over the seeds (``<work-dir>/results.md``), and draws:

* ``<out-dir>/fig_longtail_gamma_vs_frequency.png``: final gamma- per class against the class's train
  frequency (per-class runs, mean over seeds);
* ``<out-dir>/fig_longtail_per_class_curves.png``: gamma- and Delta p per class along training (the first
  seed's per-class run);
* ``<out-dir>/fig_longtail_curves.png`` with ``--val-interval``: mAP on the test split against the epoch (the
  first seed of each method).

    python tools/dataset_converters/make_longtail_canvases.py
    python tools/analysis_tools/experiment_longtail.py --epochs 2 --seeds 0 1 2
    python tools/dataset_converters/make_longtail_canvases.py --size 128 --scale-range 1.2 2.2 \\
        --out data/fashion_canvas_longtail_128
    python tools/analysis_tools/experiment_longtail.py --model effnet-lite0 --epochs 6 --val-interval 1 \\
        --target 0.1 --methods focal asl per-class efl --work-dir work_dirs/longtail_lite0 --fig-prefix lite0_

Finished runs are reused (``--force`` retrains).
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from mmdet_asl.compat import load_checkpoint_safely, load_pickle_safely  # noqa: E402
from mmdet_asl.utils.configs import custom_hooks_with  # noqa: E402
from mmdet_asl.utils.strict_json import dump_json, load_json  # noqa: E402

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from training_runs import read_scalars, thread_env  # noqa: E402

CONFIG = osp.join(ROOT, 'configs', 'multilabel', 'resnet18-w16_asl-adaptive-perclass_1xb64_fashion-canvas-longtail.py')
DATA = osp.join(ROOT, 'data', 'fashion_canvas_longtail')
# --model -> (config, data folder)
MODELS = {
    'resnet18-w16': (CONFIG, DATA),
    'effnet-lite0': (osp.join(ROOT, 'configs', 'multilabel',
                              'effnet-lite0_asl-adaptive-perclass_1xb32_fashion-canvas-longtail-128px.py'),
                     osp.join(ROOT, 'data', 'fashion_canvas_longtail_128')),
}
ASL = dict(type='mmdet.AsymmetricLoss', gamma_pos=0.0, gamma_neg=4.0, clip=0.05, loss_weight=1.0)


def methods(args):
    """name -> (the head's loss, ProbabilityGapHook settings: None = probe only, False = no probe)."""
    adaptive = dict(target=args.target, lam=args.lam, gamma_max=10.0)
    return {
        'focal': (dict(ASL, gamma_pos=2.0, gamma_neg=2.0, clip=0.0), None),
        'asl': (ASL, None),
        'adaptive': (ASL, adaptive),
        'per-class': (ASL, dict(adaptive, per_class=True)),
        'per-class+m': (ASL, dict(adaptive, per_class=True, adapt=('gamma_neg', 'clip'), clip_lam=args.clip_lam)),
        # the probe reads AsymmetricLoss only: EFL runs without it
        'efl': (dict(type='mmdet.EqualizedFocalLoss', use_sigmoid=True, num_classes=10, gamma_b=2.0,
                     scale_factor=8.0, alpha=0.5, loss_weight=2.0), False),
    }


def write_config(path, loss, adaptive, dump_file, per_class_interval, config=CONFIG):
    hook = dict(type='ProbabilityGapHook', per_class_interval=per_class_interval)
    if adaptive:
        hook['adaptive'] = adaptive
    # in place of the config's adaptive probe; none for a loss the probe cannot read
    hooks = custom_hooks_with(config, hook) if adaptive is not False else [
        h for h in custom_hooks_with(config, hook) if h['type'] != 'ProbabilityGapHook']
    loss = dict(loss, type=loss.get('type', ASL['type']))
    lines = [f'_base_ = {config!r}', f'model = dict(head=dict(loss=dict(_delete_=True, **{loss!r})))',
             f'custom_hooks = {hooks!r}',
             "val_evaluator = [dict(type='ASLMultiLabelMetric', thr=0.5, topk=3), "
             f"dict(type='DumpResults', out_file_path={dump_file!r})]", 'test_evaluator = val_evaluator']
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def per_class_ap(dump_file):
    """Per-class average precision (%) of the dumped predictions, NaN for a class without positives."""
    from mmpretrain.evaluation.metrics.multi_label import _average_precision
    samples = load_pickle_safely(dump_file)  # written by this run's DumpResults
    scores = torch.stack([torch.as_tensor(s['pred_score']) for s in samples]).float()
    target = torch.stack([torch.as_tensor(s['gt_score']) for s in samples]).float()
    return np.array([100.0 * float(_average_precision(scores[:, c], target[:, c])) if target[:, c].sum() > 0
                     else float('nan') for c in range(scores.shape[1])])


def last_scalars(run_dir, key):
    found = None
    for root, _, files in os.walk(run_dir):
        if 'scalars.json' in files:
            with open(osp.join(root, 'scalars.json')) as f:
                for line in f:
                    record = json.loads(line)
                    if key in record:
                        found = record
    return found


def final_gamma(run_dir, epochs):
    """gamma- per class at the end: the hook's state in the last checkpoint, or EFL's gamma_j from the loss's
    gradient statistics; None for a fixed loss."""
    checkpoint = load_checkpoint_safely(osp.join(run_dir, f'epoch_{epochs}.pth'), map_location='cpu')
    state = checkpoint.get('probability_gap')  # a checkpoint this script's run just wrote
    weights = checkpoint.get('state_dict', {})
    efl = [k[:-len('pos_grad')] for k in weights if k.endswith('loss_module.pos_grad')]
    if not state and efl:
        from mmdet_asl.models.losses import EqualizedFocalLoss
        pos, neg = weights[efl[0] + 'pos_grad'], weights[efl[0] + 'neg_grad']
        loss = EqualizedFocalLoss(num_classes=pos.numel())  # gamma_b 2, s 8: the method's values
        loss.pos_grad.copy_(pos)
        loss.neg_grad.copy_(neg)
        return loss.class_gamma().tolist()
    if not state:
        return None
    gamma = next(iter(state.values()))['gamma_neg']
    return gamma.tolist() if gamma.dim() else [float(gamma)] * 10


def val_curve(run_dir):
    """[(epoch, mAP)] of every evaluation of the run, in epoch order."""
    return sorted((r['step'], r['multi-label/mAP']) for r in read_scalars(run_dir) if 'multi-label/mAP' in r)


def run(name, seed, loss, adaptive, args):
    run_dir = osp.join(args.work_dir, f'{name}_seed{seed}')
    done = osp.join(run_dir, 'result.json')
    if osp.isfile(done) and not args.force:
        return load_json(done)
    os.makedirs(run_dir, exist_ok=True)
    config, dump = osp.join(run_dir, 'config.py'), osp.abspath(osp.join(run_dir, 'predictions.pkl'))
    write_config(config, loss, adaptive, dump, args.per_class_interval, MODELS[args.model][0])
    val_interval = args.val_interval or args.epochs
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir', run_dir, '--cfg-options',
           f'randomness.seed={seed}', f'train_cfg.max_epochs={args.epochs}', f'train_cfg.val_interval={val_interval}',
           f'default_hooks.checkpoint.interval={args.epochs}']
    print(f'[longtail] {name} seed {seed}: {" ".join(cmd)}', flush=True)
    start = time.time()
    env = thread_env(args.jobs)  # the eager loss, one share of the cores per run
    with open(osp.join(run_dir, 'stdout.log'), 'w') as log:
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    metrics = last_scalars(run_dir, 'multi-label/mAP')
    result = dict(name=name, seed=seed, mAP=metrics['multi-label/mAP'], CF1=metrics['multi-label/CF1'],
                  ap=per_class_ap(dump).tolist(), gamma=final_gamma(run_dir, args.epochs),
                  curve=val_curve(run_dir), seconds=round(time.time() - start))
    dump_json(result, done)
    return result


def train_frequency(data=DATA):
    with open(osp.join(data, 'annotations', 'instances_train.json')) as f:
        coco = json.load(f)
    present = {(a['image_id'], a['category_id'] - 1) for a in coco['annotations']}
    return np.bincount([c for _, c in present], minlength=len(coco['categories'])) / len(coco['images'])


def mean_std(values):
    values = np.asarray(values, dtype=float)
    return f'{values.mean():.2f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.2f}'


def report(results, freq, args):
    rare = np.argsort(freq)[:round(len(freq) / 3)]
    lines = [f'| method | mAP | mAP, rarest {len(rare)} classes | CF1 | final gamma- (mean over classes) |',
             '|---|---:|---:|---:|---:|']
    for name, (loss, _) in methods(args).items():
        runs = [r for r in results if r['name'] == name]
        if not runs:
            continue
        rare_map = [np.nanmean(np.asarray(r['ap'])[rare]) for r in runs]
        # a fixed loss has no gamma vector (null in result.json, which load_json reads as NaN)
        gammas = [np.mean(r['gamma']) for r in runs if isinstance(r['gamma'], list)]
        gamma = mean_std(gammas) if gammas else f"{loss.get('gamma_neg', 2.0):g} (fixed)"
        lines.append(f"| {name} (n = {len(runs)}) | {mean_std([r['mAP'] for r in runs])} | {mean_std(rare_map)} | "
                     f"{mean_std([r['CF1'] for r in runs])} | {gamma} |")
    setup = (f'{args.model}, {args.epochs} epochs, seeds {args.seeds}; adaptive: target Delta p {args.target}, '
             f'lam {args.lam}, clip_lam {args.clip_lam}, gamma- from 4, m 0.05; '
             f'rarest classes (train frequency): {rare.tolist()}; '
             'mean ± sample standard deviation over the seeds')
    text = setup + '\n\n' + '\n'.join(lines) + '\n'
    print(text)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(text)


def plot(results, freq, args):
    import matplotlib
    import matplotlib.ticker
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, marker in (('per-class', 'o'), ('per-class+m', 's'), ('efl', '^')):
        gammas = np.array([r['gamma'] for r in results if r['name'] == name and isinstance(r['gamma'], list)])
        if len(gammas):
            label = 'EFL gamma_j' if name == 'efl' else name
            ax.errorbar(freq, gammas.mean(0), yerr=gammas.std(0), fmt=marker, capsize=3, label=label)
    ax.axhline(4.0, color='gray', lw=0.8, ls='--', label='start (fixed ASL)')
    ax.set_xscale('log')
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels of a log axis overlap
    ax.set(xlabel='class frequency (share of train canvases)', ylabel='final gamma- (EFL: gamma_j)',
           title='Per-class focusing vs class frequency')
    ax.legend()
    fig.tight_layout()
    fig.savefig(osp.join(args.out_dir, f'fig_{args.fig_prefix}longtail_gamma_vs_frequency.png'), dpi=120)
    plt.close(fig)
    curves = {}
    for r in sorted(results, key=lambda r: r['seed']):
        if len(r.get('curve') or []) > 1:
            curves.setdefault(r['name'], (r['seed'], r['curve']))
    if curves:
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for name, (seed, curve) in curves.items():
            epochs, maps = zip(*curve)
            ax.plot(epochs, maps, marker='o', label=f'{name} (seed {seed})')
        ax.set(xlabel='epoch', ylabel='mAP on the test split (%)', title=f'Learning curves ({args.model})')
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(osp.join(args.out_dir, f'fig_{args.fig_prefix}longtail_curves.png'), dpi=120)
        plt.close(fig)
    log = osp.join(args.work_dir, f'per-class_seed{args.seeds[0]}')
    lines = []
    for root, _, files in os.walk(log):
        if 'probability_gap_per_class.jsonl' in files:
            with open(osp.join(root, 'probability_gap_per_class.jsonl')) as f:
                lines = [json.loads(line) for line in f]
    if not lines:
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    iters = [line['iter'] for line in lines]
    order = np.argsort(-freq)
    colors = plt.cm.viridis(np.linspace(0, 1, len(freq)))
    for rank, c in enumerate(order):
        label = f'class {c} ({freq[c]:.3f})'
        axes[0].plot(iters, [line['gamma_neg'][c] for line in lines], color=colors[rank], label=label)
        axes[1].plot(iters, [np.nan if line['dp'][c] is None else line['dp'][c] for line in lines],
                     color=colors[rank])
    axes[1].axhline(args.target, color='gray', lw=0.8, ls='--')
    axes[0].set(xlabel='iteration', ylabel='gamma-', title='gamma- per class (frequent: dark)')
    axes[1].set(xlabel='iteration', ylabel='Delta p', title=f'Delta p per class (target {args.target})')
    axes[0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(osp.join(args.out_dir, f'fig_{args.fig_prefix}longtail_per_class_curves.png'), dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', choices=list(MODELS), default='resnet18-w16')
    parser.add_argument('--work-dir', default='work_dirs/longtail')
    parser.add_argument('--epochs', type=int, default=2)
    parser.add_argument('--val-interval', type=int, help='epochs between evaluations (default: at the end only)')
    parser.add_argument('--fig-prefix', default='', help="prefix of the figures' names (e.g. 'lite0_')")
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--target', type=float, default=0.1)
    parser.add_argument('--lam', type=float, default=0.05)
    parser.add_argument('--clip-lam', type=float, default=0.005)
    parser.add_argument('--per-class-interval', type=int, default=5)
    parser.add_argument('--methods', nargs='+', help='a subset of the methods (default: all)')
    parser.add_argument('--out-dir', default='docs')
    parser.add_argument('--jobs', type=int, default=1, help='runs at a time (each with cpu_count // jobs threads)')
    parser.add_argument('--force', action='store_true')
    args = parser.parse_args(argv)
    data = MODELS[args.model][1]
    if not osp.isfile(osp.join(data, 'annotations', 'instances_train.json')):
        sys.exit(f'{data} is missing: run `python tools/dataset_converters/make_longtail_canvases.py` first '
                 '(with the options in this script\'s help)')
    os.makedirs(args.work_dir, exist_ok=True)
    chosen = args.methods or list(methods(args))
    # seed-major: a partial run still has every method at the first seeds
    todo = [(name, seed) for seed in args.seeds for name in chosen]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda job: run(job[0], job[1], *methods(args)[job[0]], args), todo))
    freq = train_frequency(data)
    report(results, freq, args)
    plot(results, freq, args)


if __name__ == '__main__':
    main()

#!/usr/bin/env python
"""CE vs focal (gamma 2) vs ASL (gamma- 4, gamma+ 0, m 0.05) on the Fashion-MNIST canvases, several seeds.

Each (loss, seed) trains one config of a loss-twin set with ``tools/train.py`` in a subprocess
(``randomness.seed=<seed>``; the three configs differ only in the loss), then reads the final validation metrics
from the run's ``vis_data/scalars.json``. The set is the from-scratch demo
``configs/multilabel/resnet18-w16_<loss>_1xb64_fashion-canvas.py`` by default; ``--model effnet-lite0`` takes
ImageNet EfficientNet-Lite0 fine-tuned on 128-px canvases, ``--config`` any set as a path pattern with
``{loss}``. Finished runs are reused, so an interrupted experiment resumes. Prints (and writes to
``<work-dir>/results.md``) mean +- sample std over the seeds of mAP, CF1 and OF1 (and the top-3 CF1/OF1).

    python tools/dataset_converters/make_fashion_canvases.py
    python tools/analysis_tools/experiment_multilabel.py --seeds 0 1 2

    # ImageNet EfficientNet-Lite0, fine-tuned on 128-px canvases
    python tools/dataset_converters/make_fashion_canvases.py --size 128 --scale-range 1.2 2.2 \\
        --out data/fashion_canvas_128
    python tools/analysis_tools/experiment_multilabel.py --seeds 0 1 2 --model effnet-lite0 \\
        --work-dir work_dirs/experiment_multilabel_effnet
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from mmdet_asl.utils.strict_json import dump_json, load_json  # noqa: E402

# The loss-twin sets, each a config path pattern with {loss}.
MODELS = {
    'resnet18-w16': 'configs/multilabel/resnet18-w16_{loss}_1xb64_fashion-canvas.py',
    'effnet-lite0': 'configs/multilabel/effnet-lite0_{loss}_1xb32_fashion-canvas-128px.py',
}
LOSSES = ('ce', 'focal', 'asl')
LABELS = dict(ce='CE (BCE)', focal='focal, gamma 2', asl='ASL, gamma- 4, gamma+ 0, m 0.05')
TABLE_KEYS = ('mAP', 'CF1', 'OF1', 'CF1_top3', 'OF1_top3')
ALL_KEYS = ('mAP', 'CP', 'CR', 'CF1', 'OP', 'OR', 'OF1', 'CP_top3', 'CR_top3', 'CF1_top3', 'OP_top3', 'OR_top3',
            'OF1_top3')


def last_metrics(run_dir):
    """The last line of any vis_data/scalars.json under run_dir that carries multi-label/mAP."""
    found = None
    for path in sorted(glob.glob(osp.join(run_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if 'multi-label/mAP' in rec:
                    found = rec
    if found is None:
        return None
    return {k: float(found[f'multi-label/{k}']) for k in ALL_KEYS if f'multi-label/{k}' in found}


def train_data_root(config):
    """The train set's data_root of a config (its own text, without importing the plugin)."""
    from mmengine.config import Config
    cfg = Config.fromfile(config, import_custom_modules=False)
    return cfg.train_dataloader.dataset.data_root


def run_one(loss, seed, args):
    run_dir = osp.join(args.work_dir, f'{loss}_seed{seed}')
    result_file = osp.join(run_dir, 'final_metrics.json')
    if osp.isfile(result_file) and not args.force:
        return load_json(result_file)
    opts = [f'randomness.seed={seed}', f'train_cfg.val_interval={args.val_interval}']
    if args.epochs:
        opts.append(f'train_cfg.max_epochs={args.epochs}')
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), args.config.format(loss=loss), '--work-dir', run_dir,
           '--cfg-options'] + opts
    print(f'[experiment] {loss} seed {seed}: {" ".join(cmd)}', flush=True)
    t0 = time.time()
    os.makedirs(run_dir, exist_ok=True)
    with open(osp.join(run_dir, 'stdout.log'), 'w') as log:
        # The loss's torch.compile kernels change nothing in the values; skip their compile time on CPU.
        env = dict(os.environ, MMDET_ASL_COMPILE=os.environ.get('MMDET_ASL_COMPILE', '0'))
        proc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f'{loss} seed {seed} failed (exit {proc.returncode}); see {run_dir}/stdout.log')
    metrics = last_metrics(run_dir)
    if metrics is None:
        raise RuntimeError(f'{loss} seed {seed}: no multi-label/mAP in {run_dir}/*/vis_data/scalars.json')
    metrics['seconds'] = round(time.time() - t0, 1)
    dump_json(metrics, result_file, indent=1)
    print(f'[experiment] {loss} seed {seed}: ' + ', '.join(f'{k} {metrics[k]:.2f}' for k in TABLE_KEYS) +
          f' ({metrics["seconds"]:.0f} s)', flush=True)
    return metrics


def table(results, seeds):
    lines = ['| loss | ' + ' | '.join(TABLE_KEYS) + ' |', '|---|' + '---|' * len(TABLE_KEYS)]
    for loss, runs in results.items():
        cells = []
        for k in TABLE_KEYS:
            v = np.array([r[k] for r in runs])
            std = v.std(ddof=1) if len(v) > 1 else 0.0
            cells.append(f'{v.mean():.2f} ± {std:.2f}')
        lines.append(f'| {LABELS[loss]} | ' + ' | '.join(cells) + ' |')
    lines.append('')
    lines.append(f'Mean ± sample std over seeds {", ".join(map(str, seeds))}; metrics in %, thr 0.5 '
                 '(top-3: the 3 highest scores that also reach 0.5).')
    return '\n'.join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--losses', nargs='+', default=list(LOSSES), choices=LOSSES)
    p.add_argument('--model', default='resnet18-w16', choices=sorted(MODELS),
                   help='loss-twin set: resnet18-w16 (from scratch, 64-px canvases; default) or effnet-lite0 '
                   '(ImageNet weights, 128-px canvases)')
    p.add_argument('--config', help='config path pattern instead of --model, relative to the repository, with '
                   '{loss} for ce/focal/asl')
    p.add_argument('--epochs', type=int, default=None, help='override max_epochs (default: the config\'s)')
    p.add_argument('--val-interval', type=int, default=1000, help='validate every N epochs (and at the end)')
    p.add_argument('--work-dir', default='work_dirs/experiment_multilabel')
    p.add_argument('--force', action='store_true', help='rerun finished runs')
    args = p.parse_args(argv)
    args.config = args.config or MODELS[args.model]
    if '{loss}' not in args.config:
        p.error(f'--config needs {{loss}} in it, got {args.config!r}')
    configs = [args.config.format(loss=loss) for loss in args.losses]
    absent = [c for c in configs if not osp.isfile(osp.join(ROOT, c))]
    if absent:
        sys.exit(f'config(s) not found: {", ".join(absent)}')
    data_root = train_data_root(osp.join(ROOT, configs[0]))
    if not osp.isfile(osp.join(ROOT, data_root, 'annotations', 'instances_train.json')):
        sys.exit(f'{data_root} is missing: run `python tools/dataset_converters/make_fashion_canvases.py` first '
                 f'(with the options in the header of {configs[0]})')
    results = {}
    # Seed-major order: an interrupted experiment still has every loss for the first seeds.
    for seed in args.seeds:
        for loss in args.losses:
            results.setdefault(loss, []).append(run_one(loss, seed, args))
    text = table(results, args.seeds)
    print(text)
    os.makedirs(args.work_dir, exist_ok=True)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(text + '\n')
    dump_json(dict(config=args.config, seeds=args.seeds, results=results), osp.join(args.work_dir, 'results.json'),
              indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())

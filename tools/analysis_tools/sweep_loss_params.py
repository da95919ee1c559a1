"""Train a config over a grid of loss parameters and plot the metric against the swept value (the paper's
Figs. 5-7 and Table 2 are such sweeps).

    python tools/analysis_tools/sweep_loss_params.py CONFIG --param model.head.loss.gamma_neg \
        --values 0 1 2 3 4 --seeds 0 1 --epochs 2 --work-dir work_dirs/sweep_gamma_neg \
        [--metric multi-label/mAP] [--cfg-options model.head.loss.clip=0.05 ...]

``--param`` takes one config key, or several joined by commas that all get the same value (focal loss's
gamma: ``model.head.loss.gamma_pos,model.head.loss.gamma_neg``). Values are numbers or words
(``--values full detached``). Each (value, seed) is one ``tools/train.py`` run in a subprocess with
``randomness.seed``; its metric is the last value of ``--metric`` in the run's ``vis_data/scalars.json``.
Finished runs are reused, so an interrupted sweep resumes; a finished run trained from another config or with
other ``--cfg-options`` is an error, not a reuse. Writes ``results.json``, ``results.md`` (mean and sample std
over the seeds) and ``sweep.png`` to the work dir.
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from mmdet_asl.utils.strict_json import dump_json, load_json  # noqa: E402


def parse_value(text: str):
    """'2' -> 2, '0.05' -> 0.05, 'full' -> 'full'."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def last_metric(run_dir: str, key: str) -> Optional[float]:
    """The last ``key`` in any ``vis_data/scalars.json`` under ``run_dir`` (None when absent)."""
    value = None
    for path in sorted(glob.glob(osp.join(run_dir, '**', 'vis_data', 'scalars.json'), recursive=True)):
        with open(path, encoding='utf-8') as f:
            for line in f:
                record = json.loads(line)
                if key in record:
                    value = float(record[key])
    return value


def run_one(args, value, seed: int) -> dict:
    """Train one (value, seed) unless its result is already on disk; return {value, seed, metric, seconds}."""
    run_dir = osp.join(args.work_dir, f'{args.name}={value}_seed{seed}')
    result_file = osp.join(run_dir, 'sweep_result.json')
    opts = [f'{key}={value}' for key in args.param.split(',')] + [f'randomness.seed={seed}']
    if args.epochs:
        opts += [f'train_cfg.max_epochs={args.epochs}', f'train_cfg.val_interval={args.epochs}']
    opts += args.cfg_options or []
    if osp.isfile(result_file):
        result = load_json(result_file)
        # The folder name holds only the swept value and the seed: a finished run is reused only when it was
        # trained from the same config with the same overrides (a result that records none is taken as is).
        wanted = dict(config=args.config, options=opts)
        done = dict(config=result.get('config', args.config), options=result.get('options', opts))
        if done != wanted:
            raise RuntimeError(f'{result_file}: this run was trained with {done}, not {wanted}; '
                               'use another --work-dir or delete the folder')
        return result
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), args.config, '--work-dir', run_dir,
           '--cfg-options'] + opts
    print(f'[sweep] {" ".join(cmd)}', flush=True)
    start = time.time()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL if args.quiet else None)
    metric = last_metric(run_dir, args.metric)
    if metric is None:
        raise RuntimeError(f'{run_dir}: the run logged no {args.metric!r}; check --metric and the val settings')
    result = dict(value=value, seed=seed, metric=metric, seconds=round(time.time() - start, 1), config=args.config,
                  options=opts)
    dump_json(result, result_file)
    return result


def summarise(results: List[dict]) -> Dict:
    """{value: (mean, sample std or nan, n)} in the order the values were given."""
    out = {}
    for r in results:
        out.setdefault(r['value'], []).append(r['metric'])
    return {v: (float(np.mean(m)), float(np.std(m, ddof=1)) if len(m) > 1 else float('nan'), len(m))
            for v, m in out.items()}


def table(summary: Dict, name: str, metric: str) -> str:
    lines = [f'| {name} | {metric} (mean) | std | seeds |', '|---|---|---|---|']
    lines += [f'| {v} | {m:.2f} | {s:.2f} | {n} |' for v, (m, s, n) in summary.items()]
    return '\n'.join(lines)


def plot(summary: Dict, name: str, metric: str, out: str, title: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    values = list(summary)
    numeric = all(isinstance(v, (int, float)) for v in values)
    xs = values if numeric else list(range(len(values)))
    means = [summary[v][0] for v in values]
    stds = [0.0 if np.isnan(summary[v][1]) else summary[v][1] for v in values]
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    ax.errorbar(xs, means, yerr=stds, marker='o', capsize=3)
    if not numeric:
        ax.set_xticks(xs, [str(v) for v in values])
    ax.set_xlabel(name)
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--param', required=True, help='config key(s) to sweep, comma-separated keys share a value')
    parser.add_argument('--values', nargs='+', required=True, type=parse_value)
    parser.add_argument('--seeds', nargs='+', type=int, default=[0])
    parser.add_argument('--epochs', type=int, help='train_cfg.max_epochs (validation at the last epoch)')
    parser.add_argument('--metric', default='multi-label/mAP')
    parser.add_argument('--name', help='label of the swept value (default: the last key)')
    parser.add_argument('--title', default='')
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--cfg-options', nargs='+', help='fixed key=value overrides for every run')
    parser.add_argument('--quiet', action='store_true', help='hide the training logs')
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        parser.error(f'config: {args.config} not found')
    args.config = osp.abspath(args.config)
    args.work_dir = osp.abspath(args.work_dir)
    args.name = args.name or args.param.split(',')[-1].split('.')[-1]
    os.makedirs(args.work_dir, exist_ok=True)
    results = [run_one(args, v, s) for v in args.values for s in args.seeds]
    summary = summarise(results)
    dump_json(dict(config=osp.relpath(args.config, ROOT), param=args.param, metric=args.metric,
                   epochs=args.epochs, cfg_options=args.cfg_options, runs=results),
              osp.join(args.work_dir, 'results.json'), indent=1)
    md = table(summary, args.name, args.metric)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(md + '\n')
    plot(summary, args.name, args.metric, osp.join(args.work_dir, 'sweep.png'), args.title)
    print(md)
    return 0


if __name__ == '__main__':
    sys.exit(main())

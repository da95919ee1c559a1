#!/usr/bin/env python
"""Probability gap (Eq. 9-10) of CE, focal and ASL, and adaptive asymmetry (Eq. 11, the shape of the
paper's Table 3), on the Fashion-MNIST multi-label demo canvases.

Every run trains the multi-label demo (``configs/multilabel/resnet18-w16_*_1xb64_fashion-canvas.py``)
with ``ProbabilityGapHook`` added, through ``tools/train.py`` in a subprocess:
  * CE (gamma = m = 0), focal (gamma = 2), ASL (gamma- = 4, gamma+ = 0, m = 0.05): probe only;
  * adaptive: gamma+ = 0, m = 0.05, gamma- starting at ``--gamma-start`` and driven towards each
    Delta p target in ``--targets`` with step ``--lam`` (after ``--warmup`` iterations).
It then reads the logged ``asl_dp`` / ``asl_gamma_neg`` and the final validation mAP, prints a Markdown
table (and writes ``<work-dir>/results.md``) and draws Fig. 4 (``tools/analysis_tools/plot_probabilities.py``).
Finished runs are reused.

    python tools/dataset_converters/make_fashion_canvases.py
    python tools/analysis_tools/experiment_probability_gap.py --epochs 2 --out docs/fig4_probability_gap.png
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from experiment_multilabel import last_metrics  # noqa: E402
from plot_probabilities import read_curves  # noqa: E402

from mmdet_asl.utils.configs import write_config_with_hook  # noqa: E402
from mmdet_asl.utils.strict_json import dump_json, load_json  # noqa: E402

BASE = osp.join(ROOT, 'configs', 'multilabel', 'resnet18-w16_{}_1xb64_fashion-canvas.py')


def write_config(path, base_loss, hook, loss_override=None):
    lines = [f"model = dict(head=dict(loss={loss_override!r}))"] if loss_override else []
    write_config_with_hook(path, BASE.format(base_loss), hook, lines)


def run(name, base_loss, hook, args, loss_override=None):
    run_dir = osp.join(args.work_dir, name)
    done = osp.join(run_dir, 'done.json')
    if osp.isfile(done) and not args.force:
        return load_json(done)
    os.makedirs(run_dir, exist_ok=True)
    config = osp.join(run_dir, f'{name}.py')
    write_config(config, base_loss, hook, loss_override)
    opts = [f'randomness.seed={args.seed}', f'train_cfg.max_epochs={args.epochs}',
            f'train_cfg.val_interval={args.epochs}']
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir', run_dir, '--cfg-options']
    cmd += opts
    print(f'[experiment] {name}: {" ".join(cmd)}', flush=True)
    t0 = time.time()
    with open(osp.join(run_dir, 'stdout.log'), 'w') as log:
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    curves = read_curves(run_dir)
    tail = max(1, len(curves['dp']) // 10)
    result = dict(name=name, final_dp=sum(curves['dp'][-tail:]) / tail, final_gamma=curves['gamma_neg'][-1],
                  mAP=(last_metrics(run_dir) or {}).get('mAP', float('nan')), seconds=time.time() - t0,
                  iters=len(curves['dp']))
    dump_json(result, done)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work-dir', default='work_dirs/probability_gap')
    parser.add_argument('--epochs', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--targets', type=float, nargs='+', default=[0.0, 0.1, 0.2, 0.3])
    parser.add_argument('--gamma-start', type=float, default=2.0)
    parser.add_argument('--lam', type=float, default=0.02)
    parser.add_argument('--warmup', type=int, default=20)
    parser.add_argument('--out', default='docs/fig4_probability_gap.png')
    parser.add_argument('--force', action='store_true')
    args = parser.parse_args()

    probe = dict(type='ProbabilityGapHook')
    results = [run('ce', 'ce', probe, args), run('focal', 'focal', probe, args), run('asl', 'asl', probe, args)]
    for target in args.targets:
        hook = dict(type='ProbabilityGapHook', adaptive=dict(target=target, lam=args.lam, gamma_min=0.0,
                                                              gamma_max=10.0, warmup_iters=args.warmup))
        loss = dict(type='mmdet.AsymmetricLoss', gamma_pos=0.0, gamma_neg=args.gamma_start, clip=0.05)
        results.append(run(f'adaptive_target{target:g}', 'asl', hook, args, loss_override=loss))

    header = ('| run | final Delta p | final gamma- | mAP |\n|---|---:|---:|---:|\n')
    rows = []
    for r in results:
        gamma = f"{r['final_gamma']:.2f}" if r['final_gamma'] == r['final_gamma'] else '-'
        rows.append(f"| {r['name']} | {r['final_dp']:+.3f} | {gamma} | {r['mAP']:.2f} |")
    table = header + '\n'.join(rows)
    setup = (f'{args.epochs} epochs, seed {args.seed}; adaptive: gamma+ = 0, m = 0.05, gamma- from '
             f'{args.gamma_start:g}, lam = {args.lam:g}, warm-up {args.warmup} iterations; final Delta p = mean '
             'of the last 10% of iterations')
    print(setup)
    print(table)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(setup + '\n\n' + table + '\n')
    names = [r['name'] for r in results]
    subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'analysis_tools', 'plot_probabilities.py'),
                    *[osp.join(args.work_dir, n) for n in names], '--labels', *names, '--out', args.out],
                   check=True, cwd=ROOT)


if __name__ == '__main__':
    main()

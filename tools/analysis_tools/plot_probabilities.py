"""Paper Fig. 4 from training logs: p_t+, p_t- and Delta p along training, several runs on one figure,
and the gamma- trajectory of adaptive runs.

    python tools/analysis_tools/plot_probabilities.py work_dirs/ce work_dirs/focal work_dirs/asl \
        --labels CE focal ASL --out docs/fig4_probability_gap.png

Each run is a work dir (or a ``scalars.json`` file) of a training with ``ProbabilityGapHook``: MMEngine's
LocalVisBackend writes ``<work_dir>/<timestamp>/vis_data/scalars.json``, one JSON object per logged
iteration with ``asl_pt_pos``, ``asl_pt_neg``, ``asl_dp`` (and ``asl_gamma_neg`` when adaptive).
The newest ``scalars.json`` under a work dir is used.
"""
import argparse
import glob
import json
import os
from typing import Dict, List


def find_scalars(path: str) -> str:
    if os.path.isfile(path):
        return path
    found = sorted(glob.glob(os.path.join(path, '**', 'vis_data', 'scalars.json'), recursive=True),
                   key=os.path.getmtime)
    if not found:
        raise FileNotFoundError(f'no */vis_data/scalars.json under {path!r}: was it trained with '
                                "ProbabilityGapHook and MMEngine's LocalVisBackend?")
    return found[-1]


def read_curves(path: str, prefix: str = 'asl_') -> Dict[str, List[float]]:
    """Return {'step': [...], 'pt_pos': [...], 'pt_neg': [...], 'dp': [...], 'gamma_neg': [...]}."""
    curves = {k: [] for k in ('step', 'pt_pos', 'pt_neg', 'dp', 'gamma_neg')}
    with open(find_scalars(path)) as f:
        for line in f:
            record = json.loads(line)
            if f'{prefix}dp' not in record:
                continue  # validation records
            curves['step'].append(record.get('step', record.get('iter')))
            for key in ('pt_pos', 'pt_neg', 'dp', 'gamma_neg'):
                curves[key].append(record.get(prefix + key, float('nan')))
    if not curves['step']:
        raise ValueError(f'{path!r} has no {prefix}dp scalars: add ProbabilityGapHook to the config')
    return curves


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('runs', nargs='+', help='work dirs or scalars.json files')
    parser.add_argument('--labels', nargs='*', help='one label per run (default: the paths)')
    parser.add_argument('--out', default='docs/fig4_probability_gap.png')
    args = parser.parse_args()
    labels = args.labels or args.runs
    if len(labels) != len(args.runs):
        parser.error(f'{len(args.runs)} runs but {len(labels)} labels')

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    runs = {label: read_curves(path) for label, path in zip(labels, args.runs)}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for label, c in runs.items():
        line, = axes[0].plot(c['step'], c['pt_pos'], label=f'{label} p_t+')
        axes[0].plot(c['step'], c['pt_neg'], linestyle='--', color=line.get_color(), label=f'{label} p_t-')
        axes[1].plot(c['step'], c['dp'], label=label)
    axes[0].set(xlabel='iteration', ylabel='mean p_t', title='p_t+ (solid), p_t- (dashed)')
    axes[1].set(xlabel='iteration', ylabel='Delta p = p_t+ - p_t-', title='Fig. 4: probability gap')
    axes[1].axhline(0, color='gray', linewidth=0.5)
    adaptive = {label: c for label, c in runs.items()
                if any(v == v for v in c['gamma_neg'])}  # v == v: not NaN
    for label, c in adaptive.items():
        axes[2].plot(c['step'], c['gamma_neg'], label=label)
    axes[2].set(xlabel='iteration', ylabel='gamma-', title='gamma- (adaptive runs)')
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f'wrote {args.out}')
    for label, c in runs.items():
        tail = max(1, len(c['dp']) // 10)
        mean = sum(c['dp'][-tail:]) / tail
        gamma = c['gamma_neg'][-1]
        print(f'{label}: final Delta p (mean of the last {tail} logged) = {mean:+.3f}'
              + (f', final gamma- = {gamma:.2f}' if gamma == gamma else ''))


if __name__ == '__main__':
    main()

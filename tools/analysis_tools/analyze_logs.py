"""Plot training curves (loss, mAP, Delta p, gamma-, ...) of one or more runs from MMEngine's JSON logs.

    python tools/analysis_tools/analyze_logs.py plot_curve work_dirs/run_a work_dirs/run_b \
        --keys loss multi-label/mAP asl_dp asl_gamma_neg --legend ASL CE --out curves.png

Each run is a ``vis_data/<timestamp>.json`` (or ``scalars.json``) file or a work dir holding one (the newest is
used). One subplot per key, one line per run, against the training iteration. Validation scalars (``step`` =
epoch in epoch-based loops) are drawn at the last training iteration logged before them.
"""
import argparse
import glob
import json
import os.path as osp
import sys
from collections import defaultdict
from typing import Dict, List, Tuple

Series = Dict[str, Tuple[List[float], List[float]]]
NOT_SCALARS = ('epoch', 'iter', 'step', 'time', 'data_time', 'memory')  # counters and timings, not curves


def find_log(path: str) -> str:
    """The JSON scalar log of a run: ``path`` itself, or the newest one under ``path`` (a work dir)."""
    if osp.isfile(path):
        return path
    found = sorted(glob.glob(osp.join(path, '**', 'vis_data', '*.json'), recursive=True), key=osp.getmtime)
    if not found:
        raise FileNotFoundError(f'{path}: no vis_data/*.json found (expected an MMEngine work dir or a JSON log)')
    scalars = [f for f in found if osp.basename(f) != 'scalars.json']
    return (scalars or found)[-1]


def load_log(path: str) -> Series:
    """{key: (iterations, values)} from an MMEngine JSON log (one dict per line)."""
    series: Series = defaultdict(lambda: ([], []))
    last_iter = 0
    with open(path, encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f'{path}:{n}: not a JSON line ({exc.msg})') from None
            is_train = 'lr' in record or 'loss' in record
            if is_train:
                last_iter = int(record.get('iter', record.get('step', last_iter)))
            x = last_iter
            for key, value in record.items():
                if key in NOT_SCALARS or not isinstance(value, (int, float)):
                    continue
                series[key][0].append(x)
                series[key][1].append(float(value))
    return dict(series)


def plot_curves(runs: List[Series], keys: List[str], legend: List[str], out: str, title: str = '') -> None:
    """One subplot per key, one line per run; saved to ``out``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for run, name in zip(runs, legend):
            if key in run:
                xs, ys = run[key]
                ax.plot(xs, ys, marker='o' if len(xs) < 30 else None, ms=3, label=name)
        ax.set_xlabel('iteration')
        ax.set_title(key)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='task', required=True)
    p = sub.add_parser('plot_curve', help='plot scalars against the iteration')
    p.add_argument('logs', nargs='+', help='JSON logs or work dirs')
    p.add_argument('--keys', nargs='+', default=['loss', 'multi-label/mAP', 'asl_dp', 'asl_gamma_neg'],
                   help='scalars to plot (those absent from every run are an error)')
    p.add_argument('--legend', nargs='+', help='one name per run (default: the log paths)')
    p.add_argument('--title', default='')
    p.add_argument('--out', required=True, help='output image (.png, .pdf, ...)')
    args = parser.parse_args(argv)
    legend = args.legend or args.logs
    if len(legend) != len(args.logs):
        parser.error(f'--legend has {len(legend)} names for {len(args.logs)} logs')
    runs = [load_log(find_log(path)) for path in args.logs]
    missing = [k for k in args.keys if not any(k in run for run in runs)]
    if missing:
        available = sorted(set().union(*runs))
        parser.error(f'--keys {missing} are in none of the logs; available: {available}')
    plot_curves(runs, args.keys, legend, args.out, args.title)
    print(f'{len(runs)} run(s), keys {args.keys} -> {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

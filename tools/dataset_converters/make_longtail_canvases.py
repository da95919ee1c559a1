#!/usr/bin/env python
"""Long-tailed Fashion-MNIST canvases: the canvases of ``tools/dataset_converters/make_fashion_canvases.py``
with a Zipf-like class frequency, for the per-class adaptive asymmetry and long-tailed detection.

Two tasks (``--task``), both written in the COCO-style layout of ``make_fashion_canvases.py`` (``train/``,
``test/``, ``annotations/instances_{train,test}.json`` with exact boxes), whose ``info`` records the class
order and the frequencies. Train canvases use Fashion-MNIST's train split, test canvases its test split.
Re-running with the same arguments is a no-op (unless ``--force``).

``--task multilabel`` (default; ``data/fashion_canvas_longtail``): each pasted item's class is drawn with
probability proportional to 1 / rank^s (rank 1..10 over a fixed, seeded order of the classes), then a random
real Fashion-MNIST image of that class is pasted exactly as in ``make_fashion_canvases.py`` (same composition
code, imported). With the default s = 1.7 the most frequent class is drawn 10^1.7 = 50 times as often as the
rarest (fewer times as many canvases: a frequent class is often drawn twice for one canvas); the script checks
that the most frequent class is on at least ``--min-ratio`` (default 20) times as many canvases as the rarest,
in train and in test, and fails otherwise::

    python tools/dataset_converters/make_longtail_canvases.py          # data/fashion_canvas_longtail
    python tools/dataset_converters/make_longtail_canvases.py --num-train 200 --num-test 100 --out /tmp/lt

``--task detection`` (``data/fashion_canvas_longtail_det``): exact instance counts, as a long-tailed detection
benchmark in the manner of LVIS. The training split holds ``round(head / rank^s)`` instances of the class of
each rank (``--train-head`` = head, the most frequent class's count; the rarest gets ``floor(head / 10^s)``, so
the most/rarest ratio is at least 10^s and is checked against ``--min-ratio``, default 50 for this task).
The test split is balanced: ``--test-per-class`` instances of every class, so that each class's AP can be
measured. Every instance is a distinct source image of its class, pasted by ``make_fashion_canvases.compose``
one at a time without overlapping the canvas's earlier boxes (an item that does not fit goes to the next
canvas), so the counts are exact and the number of canvases follows from them. The classes are grouped up
front from their training instance counts, as LVIS does: rare ('r') with at most ``--rare-max``, common ('c')
with at most ``--common-max``, frequent ('f') above. Each COCO category carries ``frequency``,
``instance_count`` and ``image_count`` (of the training split, as in LVIS) in both files, and
``annotations/longtail_summary.json`` holds the per-class counts, the groups and the thresholds::

    python tools/dataset_converters/make_longtail_canvases.py --task detection
    python tools/dataset_converters/make_longtail_canvases.py --task detection --train-head 500 \\
        --test-per-class 50 --out /tmp/lt_det
"""
import argparse
import json
import math
import os
import os.path as osp
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import make_fashion_canvases as canvases  # noqa: E402

FORMAT_VERSION = 1
DETECTION_FORMAT_VERSION = 1
TASKS = ('multilabel', 'detection')
DEFAULT_OUT = {'multilabel': 'data/fashion_canvas_longtail', 'detection': 'data/fashion_canvas_longtail_det'}
DEFAULT_MIN_RATIO = {'multilabel': 20.0, 'detection': 50.0}
SUMMARY = 'longtail_summary.json'
# Default group thresholds, as fractions of --train-head: with the default head of 2000 and s = 1.7 they give
# 3 rare (<= 60), 4 common (<= 200) and 3 frequent classes.
RARE_FRACTION, COMMON_FRACTION = 0.03, 0.10
GROUP_RULE = "'r': training instances <= rare_max; 'c': rare_max < instances <= common_max; 'f': above"


def class_probabilities(num_classes: int, exponent: float, seed: int):
    """(order, probabilities): class ``order[r]`` has rank r + 1 and probability ~ 1 / (r + 1)^exponent."""
    order = np.random.default_rng(seed).permutation(num_classes)
    weights = 1.0 / np.arange(1, num_classes + 1) ** exponent
    probs = np.empty(num_classes)
    probs[order] = weights / weights.sum()
    return order, probs


def draw_pool(rng, labels, probs, size):
    """Indices of ``size`` images whose classes follow ``probs``: drawing uniformly from the pool then
    follows the long-tailed frequency."""
    classes = rng.choice(len(probs), size=size, p=probs)
    by_class = [np.flatnonzero(labels == c) for c in range(len(probs))]
    return np.array([by_class[c][rng.integers(len(by_class[c]))] for c in classes])


def make_split(args, folder, split, seed, probs):
    images, labels = canvases.load_split(folder, split)
    rng = np.random.default_rng(seed)
    num = args.num_train if split == 'train' else args.num_test
    pool = draw_pool(rng, labels, probs, 4 * args.max_items * num)
    pool_images, pool_labels = images[pool], labels[pool]
    os.makedirs(osp.join(args.out, split), exist_ok=True)
    coco = dict(info=dict(description='Long-tailed Fashion-MNIST canvases (mmdet-asl '
                          'tools/dataset_converters/make_longtail_canvases.py)', source_split=split, seed=seed,
                          exponent=args.exponent, size=args.size, items=[args.min_items, args.max_items],
                          class_probabilities=probs.tolist(), format_version=FORMAT_VERSION),
                images=[], annotations=[],
                categories=[dict(id=i + 1, name=name) for i, name in enumerate(canvases.CLASSES)])
    for i in range(num):
        canvas, placed = canvases.compose(rng, pool_images, pool_labels, args.size, args.min_items, args.max_items,
                                          args.scale_range)
        name = f'{i:06d}.png'
        Image.fromarray(canvas, mode='L').save(osp.join(args.out, split, name))
        coco['images'].append(dict(id=i + 1, file_name=name, width=args.size, height=args.size))
        for cls, box, src_idx in placed:
            coco['annotations'].append(dict(id=len(coco['annotations']) + 1, image_id=i + 1, category_id=cls + 1,
                                            bbox=box, area=box[2] * box[3], iscrowd=0,
                                            source_index=int(pool[src_idx])))
    os.makedirs(osp.join(args.out, 'annotations'), exist_ok=True)
    with open(osp.join(args.out, 'annotations', f'instances_{split}.json'), 'w') as f:
        json.dump(coco, f)
    return coco


def canvases_per_class(coco, num_classes=len(canvases.CLASSES)):
    """Number of canvases on which each class is present (the multi-label positives)."""
    present = {(a['image_id'], a['category_id'] - 1) for a in coco['annotations']}
    return np.bincount([c for _, c in present], minlength=num_classes)


# ----------------------------------------------------------------------------------------------- detection
def rarest_count(head: int, num_classes: int, exponent: float) -> int:
    """Training instances of the rarest class: floor(head / C^s), so that head / rarest >= C^s."""
    return math.floor(head / num_classes ** exponent)


def zipf_counts(num_classes: int, exponent: float, head: int, order) -> np.ndarray:
    """Training instances per class: the class of rank r (``order[r - 1]``) gets round(head / r^s), the
    rarest floor(head / C^s) (never more than the rank above it)."""
    rarest = rarest_count(head, num_classes, exponent)
    by_rank = [max(rarest, int(round(head / r ** exponent))) for r in range(1, num_classes + 1)]
    by_rank[-1] = rarest
    counts = np.empty(num_classes, dtype=np.int64)
    counts[np.asarray(order)] = by_rank
    return counts


def frequency_groups(counts, rare_max: int, common_max: int):
    """LVIS-style group of each class from its training instance count ('r', 'c' or 'f')."""
    return ['r' if n <= rare_max else 'c' if n <= common_max else 'f' for n in counts]


def place_items(rng, images, labels, sources, size, min_items, max_items, scale_range, tries=50):
    """Lay out every source image on exactly one canvas.

    Each canvas takes the next 1..max_items sources of the queue; each item is drawn and placed by
    ``make_fashion_canvases.compose`` alone on an empty canvas (its resize, tight box and paste) and redrawn
    until its box keeps the 1 px gap to the canvas's earlier boxes; an item that does not fit in ``tries``
    draws goes back to the front of the queue for the next canvas. The first item of a canvas always fits, so
    every canvas holds at least one item.

    Returns:
        list of (uint8 (size, size) canvas, list of (class, [x, y, w, h], source index)).
    """
    queue, out = [int(s) for s in sources], []
    while queue:
        k = int(rng.integers(min_items, max_items + 1))
        canvas = np.zeros((size, size), dtype=np.uint8)
        placed, boxes, left = [], [], []
        for src in queue[:k]:
            for _ in range(tries):
                part, items = canvases.compose(rng, images[src:src + 1], labels[src:src + 1], size, 1, 1,
                                               scale_range)
                cls, (x, y, w, h), _ = items[0]
                if not canvases._overlaps((x, y, x + w, y + h), boxes, gap=1):
                    break
            else:
                left.append(src)
                continue
            # compose's canvas is zero outside the item's patch, so the maximum pastes it as compose would.
            np.maximum(canvas, part, out=canvas)
            boxes.append((x, y, x + w, y + h))
            placed.append((int(cls), [int(x), int(y), int(w), int(h)], src))
        queue = left + queue[k:]
        out.append((canvas, placed))
    return out


def detection_params(args):
    """What the detection output depends on (recorded in each file's ``info``; compared for up-to-date)."""
    return dict(task='detection', exponent=args.exponent, train_head=args.train_head,
                test_per_class=args.test_per_class, rare_max=args.rare_max, common_max=args.common_max,
                size=args.size, items=[args.min_items, args.max_items], scale_range=list(args.scale_range),
                seed=args.seed, format_version=DETECTION_FORMAT_VERSION)


def make_detection_split(args, folder, split, seed, counts):
    """Write one split with exactly ``counts[c]`` instances of class c, each from a distinct source image."""
    images, labels = canvases.load_split(folder, split)
    rng = np.random.default_rng(seed)
    sources = np.concatenate([rng.choice(np.flatnonzero(labels == c), size=int(n), replace=False)
                              for c, n in enumerate(counts)])
    laid_out = place_items(rng, images, labels, rng.permutation(sources), args.size, args.min_items,
                           args.max_items, args.scale_range)
    os.makedirs(osp.join(args.out, split), exist_ok=True)
    coco = dict(info=dict(description='Long-tailed Fashion-MNIST detection canvases (mmdet-asl '
                          'tools/dataset_converters/make_longtail_canvases.py --task detection)',
                          source_split=split, split_seed=seed, **detection_params(args)),
                images=[], annotations=[], categories=[])
    for i, (canvas, placed) in enumerate(laid_out):
        name = f'{i:06d}.png'
        Image.fromarray(canvas, mode='L').save(osp.join(args.out, split, name))
        coco['images'].append(dict(id=i + 1, file_name=name, width=args.size, height=args.size))
        for cls, box, src_idx in placed:
            coco['annotations'].append(dict(id=len(coco['annotations']) + 1, image_id=i + 1, category_id=cls + 1,
                                            bbox=box, area=box[2] * box[3], iscrowd=0, source_index=src_idx))
    return coco


def instances_per_class(coco, num_classes=len(canvases.CLASSES)):
    """Number of annotated instances of each class."""
    return np.bincount([a['category_id'] - 1 for a in coco['annotations']], minlength=num_classes)


def write_detection(args, folder):
    """Write both splits, the categories with their LVIS-style fields and the summary; returns the summary."""
    num_classes = len(canvases.CLASSES)
    order, _ = class_probabilities(num_classes, args.exponent, args.seed)
    train_counts = zipf_counts(num_classes, args.exponent, args.train_head, order)
    groups = frequency_groups(train_counts, args.rare_max, args.common_max)
    splits = {'train': make_detection_split(args, folder, 'train', args.seed, train_counts),
              'test': make_detection_split(args, folder, 'test', args.seed + 1,
                                           np.full(num_classes, args.test_per_class))}
    rank = np.empty(num_classes, dtype=np.int64)
    rank[order] = np.arange(1, num_classes + 1)
    train_images = canvases_per_class(splits['train'])
    categories = [dict(id=c + 1, name=name, frequency=groups[c], instance_count=int(train_counts[c]),
                       image_count=int(train_images[c])) for c, name in enumerate(canvases.CLASSES)]
    os.makedirs(osp.join(args.out, 'annotations'), exist_ok=True)
    for split, coco in splits.items():
        coco['categories'] = categories
        with open(osp.join(args.out, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(coco, f)
    test_counts = instances_per_class(splits['test'])
    summary = dict(
        description='Long-tailed Fashion-MNIST detection canvases: training instances per class ~ 1 / rank^s, '
                    'balanced test split, LVIS-style frequency groups from the training instance counts',
        **detection_params(args), min_ratio=args.min_ratio, group_rule=GROUP_RULE,
        train_most_over_rarest=float(train_counts.max() / train_counts.min()),
        classes=[dict(id=c + 1, name=name, rank=int(rank[c]), frequency=groups[c],
                      train_instances=int(train_counts[c]), train_images=int(train_images[c]),
                      test_instances=int(test_counts[c])) for c, name in enumerate(canvases.CLASSES)],
        groups={g: [canvases.CLASSES[c] for c in order if groups[c] == g] for g in ('f', 'c', 'r')},
        splits={split: dict(images=len(coco['images']), instances=len(coco['annotations']))
                for split, coco in splits.items()})
    with open(osp.join(args.out, 'annotations', SUMMARY), 'w') as f:
        json.dump(summary, f, indent=1)
    return summary


def _detection_up_to_date(args):
    want = detection_params(args)
    try:
        with open(osp.join(args.out, 'annotations', SUMMARY), 'rb') as f:
            summary = json.loads(f.read())
    except (OSError, ValueError):  # absent, unreadable or not JSON: rebuilt
        return False
    if not isinstance(summary, dict) or any(summary.get(k) != v for k, v in want.items()):
        return False
    for split in ('train', 'test'):
        coco = canvases.read_output(osp.join(args.out, 'annotations', f'instances_{split}.json'),
                                    'make_longtail_canvases')
        if coco is None or any(coco['info'].get(k) != v for k, v in want.items()):
            return False
        folder = osp.join(args.out, split)
        if not osp.isdir(folder) or any(not osp.isfile(osp.join(folder, img.get('file_name', '')))
                                        for img in coco['images'] if isinstance(img, dict)):
            return False
    return True


# ----------------------------------------------------------------------------------------------- command line
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--task', choices=TASKS, default='multilabel',
                   help='multilabel: canvases drawn with Zipf-like class probabilities (--num-train/--num-test '
                   'canvases); detection: exact Zipf-like training instance counts, balanced test split, '
                   'frequency groups')
    p.add_argument('--src', help='folder with the Fashion-MNIST IDX .gz files (default: FASHION_MNIST_DIR, '
                   'then /usr/share/datasets/fashion-mnist)')
    p.add_argument('--out', help='output folder (default: ' +
                   ', '.join(f'{DEFAULT_OUT[t]} for {t}' for t in TASKS) + ')')
    p.add_argument('--num-train', type=int, help='multilabel: train canvases (default 2000)')
    p.add_argument('--num-test', type=int, help='multilabel: test canvases (default 1000)')
    p.add_argument('--size', type=int, default=64, help='canvas side in pixels')
    p.add_argument('--min-items', type=int, default=1)
    p.add_argument('--max-items', type=int, default=4)
    p.add_argument('--scale-range', type=float, nargs=2, default=(0.6, 1.1))
    p.add_argument('--exponent', type=float, default=1.7, help='Zipf exponent s of the class frequency')
    p.add_argument('--min-ratio', type=float,
                   help='required ratio, most frequent class over the rarest: of canvases in each split '
                   '(multilabel, default 20), of training instances (detection, default 50)')
    p.add_argument('--train-head', type=int,
                   help='detection: training instances of the most frequent class (default 2000; at most the '
                   '6000 training images of a class)')
    p.add_argument('--test-per-class', type=int,
                   help='detection: test instances of every class (default 100; at most the 1000 test images '
                   'of a class)')
    p.add_argument('--rare-max', type=int,
                   help=f'detection: a class with at most this many training instances is rare (default '
                   f'{RARE_FRACTION:g} x --train-head)')
    p.add_argument('--common-max', type=int,
                   help=f'detection: a class with at most this many training instances (and more than '
                   f'--rare-max) is common, above it frequent (default {COMMON_FRACTION:g} x --train-head)')
    p.add_argument('--seed', type=int, default=0, help='class order and train use seed, test seed + 1')
    p.add_argument('--force', action='store_true')
    args = p.parse_args(argv)
    if not 1 <= args.min_items <= args.max_items:
        p.error('need 1 <= --min-items <= --max-items')
    if args.size < 28:
        p.error('--size must be >= 28')
    if not math.isfinite(args.exponent) or args.exponent <= 0:
        p.error(f'--exponent must be a finite number > 0, got {args.exponent}')
    if args.min_ratio is None:
        args.min_ratio = DEFAULT_MIN_RATIO[args.task]
    if args.out is None:
        args.out = DEFAULT_OUT[args.task]
    only = {'multilabel': ('num_train', 'num_test'),
            'detection': ('train_head', 'test_per_class', 'rare_max', 'common_max')}
    for task, names in only.items():
        for name in names:
            if task != args.task and getattr(args, name) is not None:
                p.error(f'--{name.replace("_", "-")} applies to --task {task}, not --task {args.task}' +
                        (' (the detection set\'s size follows from --train-head and --test-per-class)'
                         if task == 'multilabel' else ''))
    if args.task == 'multilabel':
        args.num_train = 2000 if args.num_train is None else args.num_train
        args.num_test = 1000 if args.num_test is None else args.num_test
        return args
    args.train_head = 2000 if args.train_head is None else args.train_head
    args.test_per_class = 100 if args.test_per_class is None else args.test_per_class
    if args.train_head < 1:
        p.error(f'--train-head must be >= 1, got {args.train_head}')
    if args.test_per_class < 1:
        p.error(f'--test-per-class must be >= 1 (every class needs test instances for its AP), got '
                f'{args.test_per_class}')
    num_classes = len(canvases.CLASSES)
    rarest = rarest_count(args.train_head, num_classes, args.exponent)
    if rarest < 1:
        p.error(f'--train-head {args.train_head} with --exponent {args.exponent} leaves the rarest class '
                f'floor({args.train_head} / {num_classes}^{args.exponent}) = 0 training instances; raise '
                f'--train-head to at least {math.ceil(num_classes ** args.exponent)} or lower --exponent')
    ratio = args.train_head / rarest
    if ratio < args.min_ratio:
        p.error(f'--exponent {args.exponent} with --train-head {args.train_head} gives a most/rarest training '
                f'ratio of {args.train_head}/{rarest} = {ratio:.1f} < --min-ratio {args.min_ratio}; raise '
                f'--exponent (the ratio is at least {num_classes}^s)')
    if args.rare_max is None:
        args.rare_max = int(round(RARE_FRACTION * args.train_head))
    if args.common_max is None:
        args.common_max = max(int(round(COMMON_FRACTION * args.train_head)), args.rare_max + 1)
    if args.rare_max < 0:
        p.error(f'--rare-max must be >= 0, got {args.rare_max}')
    if args.common_max <= args.rare_max:
        p.error(f'--common-max ({args.common_max}) must be greater than --rare-max ({args.rare_max})')
    return args


def _up_to_date(args, probs):
    for split in ('train', 'test'):
        coco = canvases.read_output(osp.join(args.out, 'annotations', f'instances_{split}.json'),
                                    'make_longtail_canvases')
        if coco is None:
            return False
        info, num = coco['info'], args.num_train if split == 'train' else args.num_test
        if info.get('format_version') != FORMAT_VERSION or info.get('class_probabilities') != probs.tolist() or \
                info.get('size') != args.size or info.get('items') != [args.min_items, args.max_items] or \
                len(coco['images']) != num:
            return False
    return True


def _load_sources(args):
    """The folder of the Fashion-MNIST files, every one read; None (said on stderr) when they are unusable."""
    try:
        folder = canvases.find_source(args.src)
        for split in canvases.FILES:
            canvases.load_split(folder, split)  # every source file readable before anything is written
    except (FileNotFoundError, ValueError) as e:
        print(f'[make_longtail_canvases] error: {e}', file=sys.stderr)
        return None
    return folder


def main_detection(args):
    if not args.force and _detection_up_to_date(args):
        print(f'[make_longtail_canvases] {args.out} is up to date')
        return 0
    folder = _load_sources(args)
    if folder is None:
        return 2
    for split, option, need in (('train', '--train-head', args.train_head),
                                ('test', '--test-per-class', args.test_per_class)):
        available = np.bincount(canvases.load_split(folder, split)[1], minlength=len(canvases.CLASSES))
        if available.min() < need:
            c = int(available.argmin())
            print(f'[make_longtail_canvases] error: {option} {need} exceeds the {available[c]} {split} images of '
                  f'class {canvases.CLASSES[c]!r} in {folder}: each instance is a distinct source image',
                  file=sys.stderr)
            return 2
    summary = write_detection(args, folder)
    for split, info in summary['splits'].items():
        key = 'train_instances' if split == 'train' else 'test_instances'
        print(f'[make_longtail_canvases] {split}: {info["images"]} canvases, {info["instances"]} instances, per '
              f'class {[c[key] for c in summary["classes"]]} -> {args.out}')
    print(f'[make_longtail_canvases] train most/rarest {summary["train_most_over_rarest"]:.1f}; groups (rare <= '
          f'{args.rare_max} < common <= {args.common_max} < frequent): ' +
          '; '.join(f'{g}: {", ".join(names)}' for g, names in summary['groups'].items()))
    return 0


def main(argv=None):
    args = parse_args(argv)
    if args.task == 'detection':
        return main_detection(args)
    _, probs = class_probabilities(len(canvases.CLASSES), args.exponent, args.seed)
    if not args.force and _up_to_date(args, probs):
        print(f'[make_longtail_canvases] {args.out} is up to date')
        return 0
    folder = _load_sources(args)
    if folder is None:
        return 2
    for split, seed in (('train', args.seed), ('test', args.seed + 1)):
        counts = canvases_per_class(make_split(args, folder, split, seed, probs))
        ratio = counts.max() / max(counts.min(), 1)
        print(f'[make_longtail_canvases] {split}: canvases per class {counts.tolist()}, most/rarest {ratio:.1f}')
        if ratio < args.min_ratio:
            print(f'[make_longtail_canvases] error: {split} most/rarest class ratio {ratio:.1f} < --min-ratio '
                  f'{args.min_ratio}: raise --exponent or the number of canvases', file=sys.stderr)
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())

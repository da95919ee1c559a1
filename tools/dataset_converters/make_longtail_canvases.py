#!/usr/bin/env python
"""Long-tailed Fashion-MNIST canvases: the multi-label canvases of
``tools/dataset_converters/make_fashion_canvases.py`` with a Zipf-like class frequency, for the per-class
adaptive asymmetry.

Each pasted item's class is drawn with probability proportional to 1 / rank^s (rank 1..10 over a fixed,
seeded order of the classes), then a random real Fashion-MNIST image of that class is pasted exactly as in
``make_fashion_canvases.py`` (same composition code, imported). With the default s = 1.7 the most frequent
class is drawn 10^1.7 = 50 times as often as the rarest (fewer times as many canvases: a frequent class is
often drawn twice for one canvas); the script checks that the most frequent class is
on at least ``--min-ratio`` (default 20) times as many canvases as the rarest, in train and in test, and
fails otherwise. Train canvases use Fashion-MNIST's train split, test canvases its test split::

    python tools/dataset_converters/make_longtail_canvases.py          # data/fashion_canvas_longtail
    python tools/dataset_converters/make_longtail_canvases.py --num-train 200 --num-test 100 --out /tmp/lt

Output: the COCO-style layout of ``make_fashion_canvases.py`` (``train/``, ``test/``,
``annotations/instances_{train,test}.json``), whose ``info`` also records the class order and the
frequencies. Re-running with the same arguments is a no-op (unless ``--force``).
"""
import argparse
import json
import os
import os.path as osp
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import make_fashion_canvases as canvases  # noqa: E402

FORMAT_VERSION = 1


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


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--src', help='folder with the Fashion-MNIST IDX .gz files (default: FASHION_MNIST_DIR, '
                   'then /usr/share/datasets/fashion-mnist)')
    p.add_argument('--out', default='data/fashion_canvas_longtail')
    p.add_argument('--num-train', type=int, default=2000)
    p.add_argument('--num-test', type=int, default=1000)
    p.add_argument('--size', type=int, default=64, help='canvas side in pixels')
    p.add_argument('--min-items', type=int, default=1)
    p.add_argument('--max-items', type=int, default=4)
    p.add_argument('--scale-range', type=float, nargs=2, default=(0.6, 1.1))
    p.add_argument('--exponent', type=float, default=1.7, help='Zipf exponent s of the class frequency')
    p.add_argument('--min-ratio', type=float, default=20.0,
                   help='required ratio of canvases, most frequent class over the rarest, in each split')
    p.add_argument('--seed', type=int, default=0, help='class order and train use seed, test seed + 1')
    p.add_argument('--force', action='store_true')
    args = p.parse_args(argv)
    if not 1 <= args.min_items <= args.max_items:
        p.error('need 1 <= --min-items <= --max-items')
    if args.size < 28:
        p.error('--size must be >= 28')
    if args.exponent <= 0:
        p.error('--exponent must be > 0')
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


def main(argv=None):
    args = parse_args(argv)
    _, probs = class_probabilities(len(canvases.CLASSES), args.exponent, args.seed)
    if not args.force and _up_to_date(args, probs):
        print(f'[make_longtail_canvases] {args.out} is up to date')
        return 0
    try:
        folder = canvases.find_source(args.src)
        for split in canvases.FILES:
            canvases.load_split(folder, split)  # every source file readable before anything is written
    except (FileNotFoundError, ValueError) as e:
        print(f'[make_longtail_canvases] error: {e}', file=sys.stderr)
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

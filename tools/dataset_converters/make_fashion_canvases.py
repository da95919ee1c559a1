#!/usr/bin/env python
"""Compose Fashion-MNIST product images into small multi-label canvases (with exact boxes).

Each canvas holds 1-4 real Fashion-MNIST images, rescaled and pasted without overlapping boxes on a
black background. Train canvases use only the dataset's train split, test canvases only its test split;
a fixed seed makes the output byte-for-byte reproducible. The output is a COCO-style layout, so the same
files serve the multi-label classification demo (``CocoMultiLabel``: a class is positive when one of its
boxes is on the canvas) and the detection demo (``mmdet.CocoDataset``: exact boxes)::

    data/fashion_canvas/
        train/000000.png ...                      (grayscale PNG, --size x --size, default 64 x 64)
        test/000000.png ...
        annotations/instances_train.json          (COCO: images, annotations with bbox [x, y, w, h], categories)
        annotations/instances_test.json

Source data: Debian's ``dataset-fashion-mnist`` package (``apt-get install -y dataset-fashion-mnist``), which
installs ``/usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``. Another folder
with the same four files can be given by ``--src`` or the ``FASHION_MNIST_DIR`` environment variable.

    python tools/dataset_converters/make_fashion_canvases.py    # 6000 train + 2000 test canvases, seed 0
    python tools/dataset_converters/make_fashion_canvases.py --num-train 200 --num-test 100 \\
        --out data/fashion_canvas_tiny

A box is the tight extent of the pasted item's non-zero pixels, so boxes are exact in canvas pixels.
Re-running with the same arguments is a no-op (unless ``--force``). Positions and item sizes are drawn from the
seeded generator in canvas pixels, so ``--size`` and ``--scale-range`` change the whole draw: canvases of
another size are another sample of items, not a rescaled copy.

Two data axes for studying when the asymmetric loss helps:

* ``--num-classes K`` (default 10): canvases hold only items of the first K classes of ``CLASSES`` and the
  files list only those K categories, so a canvas has K - P negatives for its P positives. With
  ``--min-items``/``--max-items`` (the positives per canvas) this sets the negatives per positive. Another K
  is another draw of canvases (the items come from another pool). ``--classes I [I ...]`` names the classes
  instead, as indices into ``CLASSES`` in the order of their category ids: ``--classes 0 2 6`` makes the
  three-class task of the tops (T-shirt/top, Pullover, Shirt), the classes Fashion-MNIST confuses most, where
  the first three classes (T-shirt/top, Trouser, Pullover) are nearly separable. ``--num-classes K`` is
  ``--classes 0 ... K-1``.
* ``--missing-rate RHO`` (default 0): removes training positives, as missing labels do. With
  ``--missing-unit label`` (default) each (canvas, class) pair of the train split is removed with
  probability RHO: all boxes of that class on that canvas leave ``instances_train.json`` (the items stay in
  the image; only the label is missing). With ``--missing-unit box`` each train box is removed with
  probability RHO (for detection). The test split is never touched. The removal uses its own generator,
  seeded from (``--seed``, "missing"), after all canvases are drawn, so the same ``--seed`` gives the same
  images and test file whatever RHO is, and the removals at a smaller RHO are a subset of those at a larger
  one (a pair or box is removed when its uniform draw is below RHO). ``annotations/removed_train_labels.json``
  records the rate, unit, seed and every removed (image id, category id, annotation ids); annotation ids are
  those of the complete file, so the RHO = 0 file minus the recorded ids is the file written. RHO = 0
  writes no record and the same files as before these options existed.

A canvas whose every label is removed stays in ``instances_train.json`` without annotations: load it with
``drop_empty=False`` (``CocoMultiLabel``) to keep it as a sample whose labels are all missing.
"""
import argparse
import functools
import gzip
import json
import os
import os.path as osp
import struct
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
# the removal's generator is independent of the canvases' default_rng(seed): removing labels never changes
# which canvases are drawn
from missing_labels import MISSING_UNITS, REMOVED_FILE, record_matches, remove_labels, write_record  # noqa: E402

CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag',
           'Ankle boot')
DEFAULT_DIRS = ('/usr/share/datasets/fashion-mnist', )
FILES = {
    'train': ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
    'test': ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'),
}
FORMAT_VERSION = 1


def find_source(src=None):
    """Return the folder holding the four Fashion-MNIST IDX files; raise FileNotFoundError naming them."""
    candidates = [src] if src else [os.environ.get('FASHION_MNIST_DIR')] + list(DEFAULT_DIRS)
    needed = [f for pair in FILES.values() for f in pair]
    for folder in candidates:
        if folder and all(osp.isfile(osp.join(folder, f)) for f in needed):
            return folder
    tried = [c for c in candidates if c]
    missing = [osp.join(tried[0], f) for f in needed if not osp.isfile(osp.join(tried[0], f))] if tried else needed
    raise FileNotFoundError(
        'Fashion-MNIST source files not found. Missing: ' + ', '.join(missing) + '. Looked in: ' +
        ', '.join(tried) + '.\nInstall them with `apt-get install -y dataset-fashion-mnist` (Debian/Ubuntu; '
        'installs /usr/share/datasets/fashion-mnist/), or point --src / FASHION_MNIST_DIR at a folder with ' +
        ', '.join(needed) + '.')


def read_idx(path):
    """A gzipped IDX file of unsigned bytes as an array; a file that is not one raises ValueError naming it."""
    try:
        with gzip.open(path, 'rb') as f:
            data = f.read()
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError; EOFError: cut-off gzip stream
        raise ValueError(f'{path} is not a readable gzip file ({exc}); expected a gzipped IDX file of '
                         'Fashion-MNIST, as `apt-get install -y dataset-fashion-mnist` installs') from None
    if len(data) < 4 or data[:3] != b'\x00\x00\x08' or not 1 <= data[3] <= 4:
        raise ValueError(f'{path} does not start with an IDX header of unsigned bytes (magic 0x0801-0x0804, got '
                         f'{data[:4].hex() or "nothing"}); expected a Fashion-MNIST IDX file')
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f'{path} is cut off inside its IDX header ({len(data)} bytes)')
    dims = struct.unpack('>' + 'I' * ndim, data[4:4 + 4 * ndim])
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if len(data) != expected:
        raise ValueError(f'{path} holds {len(data)} bytes; its IDX header {dims} announces {expected}: the file is '
                         'truncated or not a Fashion-MNIST file')
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


@functools.lru_cache(maxsize=4)  # main() checks the files first; make_split() reuses the arrays
def load_split(folder, split):
    img_file, lbl_file = FILES[split]
    images = read_idx(osp.join(folder, img_file))
    labels = read_idx(osp.join(folder, lbl_file))
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28) or labels.ndim != 1:
        raise ValueError(f'{osp.join(folder, img_file)} and {osp.join(folder, lbl_file)} hold arrays of shapes '
                         f'{images.shape} and {labels.shape}; expected (N, 28, 28) images and N labels')
    return images, labels


def _overlaps(box, boxes, gap):
    x0, y0, x1, y1 = box
    for bx0, by0, bx1, by1 in boxes:
        if x0 < bx1 + gap and bx0 < x1 + gap and y0 < by1 + gap and by0 < y1 + gap:
            return True
    return False


def compose(rng, images, labels, size, min_items, max_items, scale_range, tries=50):
    """One canvas: returns (uint8 (size, size) image, list of (class, [x, y, w, h], source index))."""
    canvas = np.zeros((size, size), dtype=np.uint8)
    n = int(rng.integers(min_items, max_items + 1))
    placed, boxes = [], []
    for _ in range(n):
        idx = int(rng.integers(len(images)))
        side = int(round(28 * float(rng.uniform(*scale_range))))
        side = max(8, min(side, size))
        patch = np.asarray(Image.fromarray(images[idx]).resize((side, side), Image.BILINEAR))
        ys, xs = np.nonzero(patch)
        if len(xs) == 0:
            continue
        # Tight box of the item inside its patch; placement keeps tight boxes disjoint (1 px gap).
        px0, py0, px1, py1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        for _ in range(tries):
            ox = int(rng.integers(-px0, size - px1 + 1))
            oy = int(rng.integers(-py0, size - py1 + 1))
            box = (ox + px0, oy + py0, ox + px1, oy + py1)
            if not _overlaps(box, boxes, gap=1):
                break
        else:
            continue
        # Paste the part of the patch that lies on the canvas (the tight box always does).
        cx0, cy0 = max(ox, 0), max(oy, 0)
        cx1, cy1 = min(ox + side, size), min(oy + side, size)
        sub = patch[cy0 - oy:cy1 - oy, cx0 - ox:cx1 - ox]
        canvas[cy0:cy1, cx0:cx1] = np.maximum(canvas[cy0:cy1, cx0:cx1], sub)
        boxes.append(box)
        x0, y0, x1, y1 = box
        placed.append((int(labels[idx]), [int(x0), int(y0), int(x1 - x0), int(y1 - y0)], idx))
    if not placed:  # practically impossible (first item always fits); keep the canvas non-empty anyway
        return compose(rng, images, labels, size, min_items, max_items, scale_range, tries)
    return canvas, placed


def make_split(args, folder, split, seed):
    images, labels = load_split(folder, split)
    classes = class_ids(args)
    num_classes = len(classes)
    source_index = None
    if classes != list(range(len(CLASSES))):
        # Items of the chosen classes only: draw from their images, labelled by the position of their class
        # in the list. All ten classes in order draw from the full arrays, so that a seed gives the same
        # canvases with or without the options.
        source_index = np.flatnonzero(np.isin(labels, classes))
        position = np.full(len(CLASSES), -1, dtype=np.int64)
        position[classes] = np.arange(num_classes)
        images, labels = images[source_index], position[labels[source_index]]
    rng = np.random.default_rng(seed)
    img_dir = osp.join(args.out, split)
    os.makedirs(img_dir, exist_ok=True)
    num = args.num_train if split == 'train' else args.num_test
    coco = dict(
        info=dict(description='Fashion-MNIST canvases (mmdet-asl tools/dataset_converters/make_fashion_canvases.py)',
                  source_split=split, seed=seed, size=args.size, items=[args.min_items, args.max_items],
                  scale_range=list(args.scale_range), format_version=FORMAT_VERSION),
        images=[], annotations=[],
        categories=[dict(id=i + 1, name=CLASSES[c]) for i, c in enumerate(classes)])
    if num_classes != len(CLASSES):
        coco['info']['num_classes'] = num_classes
    if classes != list(range(num_classes)):
        coco['info']['classes'] = classes
    ann_id = 1
    for i in range(num):
        canvas, placed = compose(rng, images, labels, args.size, args.min_items, args.max_items,
                                 args.scale_range)
        name = f'{i:06d}.png'
        Image.fromarray(canvas, mode='L').save(osp.join(img_dir, name))
        coco['images'].append(dict(id=i + 1, file_name=name, width=args.size, height=args.size))
        for cls, box, src_idx in placed:
            if source_index is not None:
                src_idx = int(source_index[src_idx])
            coco['annotations'].append(
                dict(id=ann_id, image_id=i + 1, category_id=cls + 1, bbox=box, area=box[2] * box[3],
                     iscrowd=0, source_index=src_idx))
            ann_id += 1
    os.makedirs(osp.join(args.out, 'annotations'), exist_ok=True)
    rate = getattr(args, 'missing_rate', 0.0)
    if split == 'train' and rate > 0:
        unit = getattr(args, 'missing_unit', 'label')
        total = len(coco['annotations'])
        coco['annotations'], removals = remove_labels(coco['annotations'], rate, unit, args.seed)
        coco['info'].update(missing_rate=rate, missing_unit=unit)
        write_record(osp.join(args.out, 'annotations', REMOVED_FILE), rate, unit, args.seed, total,
                     len(coco['annotations']), removals)
    elif split == 'train' and osp.isfile(osp.join(args.out, 'annotations', REMOVED_FILE)):
        os.remove(osp.join(args.out, 'annotations', REMOVED_FILE))  # a record of an earlier rate no longer holds
    with open(osp.join(args.out, 'annotations', f'instances_{split}.json'), 'w') as f:
        json.dump(coco, f)
    return coco


def class_ids(args):
    """The source classes of the output's categories 1..K, as indices into ``CLASSES``."""
    classes = getattr(args, 'classes', None)
    return list(classes) if classes else list(range(getattr(args, 'num_classes', len(CLASSES))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--src', help='folder with the Fashion-MNIST IDX .gz files (default: FASHION_MNIST_DIR, '
                   'then /usr/share/datasets/fashion-mnist)')
    p.add_argument('--out', default='data/fashion_canvas')
    p.add_argument('--num-train', type=int, default=6000)
    p.add_argument('--num-test', type=int, default=2000)
    p.add_argument('--size', type=int, default=64, help='canvas side in pixels (changes which items are drawn)')
    p.add_argument('--min-items', type=int, default=1)
    p.add_argument('--max-items', type=int, default=4)
    p.add_argument('--scale-range', type=float, nargs=2, default=(0.6, 1.1),
                   help='item side = 28 px times a uniform factor in this range')
    p.add_argument('--seed', type=int, default=0, help='train uses seed, test uses seed + 1')
    p.add_argument('--num-classes', type=int, default=len(CLASSES),
                   help=f'use only the first K of the {len(CLASSES)} classes (sets the negatives per positive '
                   'with --min-items/--max-items)')
    p.add_argument('--classes', type=int, nargs='+', metavar='I',
                   help='use only these classes (indices into CLASSES, in category-id order) instead of the '
                   'first --num-classes')
    p.add_argument('--missing-rate', type=float, default=0.0,
                   help='remove this fraction of the train positives, in [0, 1) (test labels stay complete)')
    p.add_argument('--missing-unit', choices=MISSING_UNITS, default='label',
                   help='what --missing-rate removes: a (canvas, class) label with all its boxes, or single boxes')
    p.add_argument('--force', action='store_true', help='rebuild even if the output matches')
    args = p.parse_args(argv)
    if not 1 <= args.min_items <= args.max_items:
        p.error('need 1 <= --min-items <= --max-items')
    if not 0.0 <= args.missing_rate < 1.0:  # NaN fails too
        p.error(f'--missing-rate must be in [0, 1) (the fraction of train positives removed), got {args.missing_rate}')
    if not 1 <= args.num_classes <= len(CLASSES):
        p.error(f'--num-classes must be in [1, {len(CLASSES)}] (Fashion-MNIST has {len(CLASSES)} classes), '
                f'got {args.num_classes}')
    if args.classes is not None:
        if args.num_classes != len(CLASSES) and args.num_classes != len(args.classes):
            p.error(f'--num-classes {args.num_classes} and --classes (of {len(args.classes)}) disagree: '
                    'give one of them')
        bad = [c for c in args.classes if not 0 <= c < len(CLASSES)]
        if bad or len(set(args.classes)) != len(args.classes):
            p.error(f'--classes must be distinct indices in [0, {len(CLASSES) - 1}] (Fashion-MNIST has '
                    f'{len(CLASSES)} classes), got {args.classes}')
        args.num_classes = len(args.classes)
    if args.size < 28:
        p.error('--size must be >= 28')
    return args


def read_output(path, tag='make_fashion_canvases'):
    """An existing output annotation file, or None when it is absent or unusable (said on stderr; the caller
    then rebuilds it)."""
    if not osp.isfile(path):
        return None
    try:
        with open(path, 'rb') as f:
            coco = json.loads(f.read())
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        print(f'[{tag}] {path} exists but is not valid JSON ({exc}): rebuilding it', file=sys.stderr)
        return None
    if not isinstance(coco, dict) or not isinstance(coco.get('info'), dict) or \
            not isinstance(coco.get('images'), list):
        print(f'[{tag}] {path} exists but is not a COCO file with "info" and "images": rebuilding it',
              file=sys.stderr)
        return None
    return coco


def _up_to_date(args):
    for split, seed in (('train', args.seed), ('test', args.seed + 1)):
        coco = read_output(osp.join(args.out, 'annotations', f'instances_{split}.json'))
        if coco is None:
            return False
        info = coco['info']
        num = args.num_train if split == 'train' else args.num_test
        want = dict(seed=seed, size=args.size, items=[args.min_items, args.max_items],
                    scale_range=list(args.scale_range), format_version=FORMAT_VERSION)
        if any(info.get(k) != v for k, v in want.items()):
            return False
        if info.get('num_classes', len(CLASSES)) != args.num_classes or \
                info.get('classes', list(range(args.num_classes))) != class_ids(args):
            return False
        if split == 'train' and (info.get('missing_rate', 0.0) != args.missing_rate or
                                 (args.missing_rate > 0 and info.get('missing_unit') != args.missing_unit)):
            return False
        if not osp.isdir(osp.join(args.out, split)) or len(os.listdir(osp.join(args.out, split))) < num:
            return False
        if len(coco['images']) != num:
            return False
    if args.missing_rate > 0 and not record_matches(osp.join(args.out, 'annotations', REMOVED_FILE),
                                                    args.missing_rate, args.missing_unit, args.seed):
        return False
    return True


def main(argv=None):
    args = parse_args(argv)
    if not args.force and _up_to_date(args):
        print(f'[make_fashion_canvases] {args.out} is up to date')
        return 0
    try:
        folder = find_source(args.src)
        for split in FILES:
            load_split(folder, split)  # every source file readable before anything is written
    except (FileNotFoundError, ValueError) as e:
        print(f'[make_fashion_canvases] error: {e}', file=sys.stderr)
        return 2
    for split, seed in (('train', args.seed), ('test', args.seed + 1)):
        coco = make_split(args, folder, split, seed)
        counts = np.bincount([a['category_id'] - 1 for a in coco['annotations']], minlength=args.num_classes)
        removed = (f' ({coco["info"]["missing_rate"]} of the train {args.missing_unit}s removed as missing, '
                   f'listed in annotations/{REMOVED_FILE})' if 'missing_rate' in coco['info'] else '')
        print(f'[make_fashion_canvases] {split}: {len(coco["images"])} canvases, '
              f'{len(coco["annotations"])} items{removed}, per class {counts.tolist()} -> {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

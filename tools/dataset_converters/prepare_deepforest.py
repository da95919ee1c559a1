#!/usr/bin/env python
"""Convert the DeepForest sample data (aerial RGB, hand-drawn tree crowns) to COCO-format tiles.

The ``deepforest`` wheel on PyPI ships four annotated aerial images (Pascal VOC XML) under
``deepforest/data/``. This script fetches the wheel with ``pip download deepforest==VERSION --no-deps``
(nothing is installed), unzips only the data folder, cuts the images into square tiles and writes
MMDetection's COCO layout::

    data/deepforest/
        images/{train,val}/<source>_<x0>_<y0>.png
        annotations/train.json, annotations/val.json

Split (by *source image*, so no tree appears in both splits):

    train: 2019_YELL_2_528000_4978000_image_crop2 (2299x2472, 574 trees),
           OSBS_029 (400x400, 61 trees), SOAP_061 (400x400, 37 trees: 'Alive'/'Dead' mapped to 'Tree')
    val:   2019_YELL_2_541000_4977000_image_crop (1249x1035, 279 trees)

One class, ``Tree``. Tiles are ``--tile-size`` squares on a grid of stride ``--tile-size`` (the last row and
column are shifted inwards to stay inside the image, so they overlap their neighbours). A box is clipped to
the tile; it is kept as a normal annotation when at least ``--min-visible`` of its area is inside, as an
``iscrowd=1`` (ignored by training and by COCO evaluation) region when less but some is, and dropped when
the clipped box is under 2 px wide or high.

``--missing-rate RHO`` (in [0, 1)) removes each training box with probability RHO, as a crowd annotator who
misses trees would: the tree stays in the image, its box leaves ``train.json`` (ignored ``iscrowd`` regions are
not positives and stay). The draws come from their own generator seeded from (``--seed``, "missing"), one
per box in annotation order, so a smaller rate removes a subset of what a larger one removes and the tiles are
the same whatever the rate; ``annotations/removed_train_labels.json`` records the rate, seed and every removed
annotation id (ids of the complete file). ``val.json`` is never touched.

Usage::

    python tools/dataset_converters/prepare_deepforest.py   # -> data/deepforest (downloads the wheel once)
    python tools/dataset_converters/prepare_deepforest.py --wheel path/to/deepforest-2.1.0-py3-none-any.whl
    python tools/dataset_converters/prepare_deepforest.py --out data/df_small --max-tiles 4 2   # a few tiles (tests)
    python tools/dataset_converters/prepare_deepforest.py --missing-rate 0.3 --out data/deepforest_miss30
"""
import argparse
import json
import os
import os.path as osp
import sys
import xml.etree.ElementTree as ET
import zipfile

import cv2
import numpy as np

from mmdet_asl.utils import wheels

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from missing_labels import REMOVED_FILE, remove_labels, write_record  # noqa: E402

DEFAULT_VERSION = '2.1.0'
SPLITS = {
    'train': ['2019_YELL_2_528000_4978000_image_crop2', 'OSBS_029', 'SOAP_061'],
    'val': ['2019_YELL_2_541000_4977000_image_crop'],
}
CLASSES = ('Tree', )


def fetch_wheel(cache_dir: str, version: str) -> str:
    """The deepforest wheel (its sample images and boxes) in ``cache_dir``."""
    return wheels.fetch_wheel('deepforest', version, cache_dir)


def extract_data(wheel: str, dest: str) -> str:
    """Unzip the wheel's ``deepforest/data/`` into ``dest`` (files already there are kept) and return it.

    Raises:
        FileNotFoundError: ``wheel`` does not exist.
        ValueError: ``wheel`` is not a zip archive (a text or HTML file saved under a wheel's name, a cut-off
            download), or holds no ``deepforest/data/`` folder.
    """
    data_dir = osp.join(dest, 'deepforest', 'data')
    if not osp.isfile(wheel):
        raise FileNotFoundError(f'wheel {wheel} does not exist; pass a deepforest wheel with --wheel, or leave '
                                '--wheel out to fetch it into --cache')
    redo = (f'delete it and fetch the wheel again (pip download deepforest=={DEFAULT_VERSION} --no-deps), or '
            'leave --wheel out to fetch it into --cache')
    try:
        with zipfile.ZipFile(wheel) as zf:
            names = [n for n in zf.namelist() if n.startswith('deepforest/data/')]
            if not names:
                raise ValueError(f'{wheel} holds no deepforest/data/ folder; expected the deepforest wheel '
                                 f'(its sample images and boxes): {redo}')
            missing = [n for n in names if not osp.exists(osp.join(dest, n))]
            if missing:
                zf.extractall(dest, missing)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f'{wheel} is not a wheel: not a readable zip archive ({exc}); {redo}') from None
    return data_dir


def read_voc(xml_path: str):
    root = ET.parse(xml_path).getroot()
    boxes = []
    for obj in root.findall('object'):
        bb = obj.find('bndbox')
        boxes.append([float(bb.find(k).text) for k in ('xmin', 'ymin', 'xmax', 'ymax')])
    return np.array(boxes, dtype=np.float64).reshape(-1, 4)


def tile_origins(length: int, tile: int):
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, tile))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def convert(data_dir: str, out: str, tile: int, min_visible: float, max_tiles=None, missing_rate=0.0, seed=0):
    """Write the tiles and both splits' COCO files; ``missing_rate`` of the train boxes removed (seeded)."""
    if not 0.0 <= missing_rate < 1.0:  # NaN fails too
        raise ValueError(f'missing_rate must be in [0, 1) (the fraction of train boxes removed), got {missing_rate}')
    os.makedirs(osp.join(out, 'annotations'), exist_ok=True)
    record_path = osp.join(out, 'annotations', REMOVED_FILE)
    if osp.isfile(record_path):
        os.remove(record_path)  # a record of an earlier rate no longer holds
    stats = {}
    for split_idx, (split, sources) in enumerate(SPLITS.items()):
        img_dir = osp.join(out, 'images', split)
        os.makedirs(img_dir, exist_ok=True)
        images, annotations = [], []
        for source in sources:
            img = cv2.imread(osp.join(data_dir, source + '.png'), cv2.IMREAD_COLOR)
            if img is None:
                raise FileNotFoundError(osp.join(data_dir, source + '.png'))
            boxes = read_voc(osp.join(data_dir, source + '.xml'))
            h, w = img.shape[:2]
            areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            for y0 in tile_origins(h, tile):
                for x0 in tile_origins(w, tile):
                    crop = img[y0:y0 + tile, x0:x0 + tile]
                    th, tw = crop.shape[:2]
                    clipped = boxes.copy()
                    clipped[:, [0, 2]] = np.clip(clipped[:, [0, 2]] - x0, 0, tw)
                    clipped[:, [1, 3]] = np.clip(clipped[:, [1, 3]] - y0, 0, th)
                    cw, ch = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
                    visible = (cw * ch) / np.maximum(areas, 1e-6)
                    keep = (cw >= 2) & (ch >= 2)
                    if not keep.any():
                        continue
                    name = f'{source}_{x0}_{y0}.png'
                    image_id = len(images) + 1
                    cv2.imwrite(osp.join(img_dir, name), crop)
                    images.append(dict(id=image_id, file_name=name, width=tw, height=th, source=source))
                    for box, bw, bh, vis in zip(clipped[keep], cw[keep], ch[keep], visible[keep]):
                        annotations.append(dict(
                            id=len(annotations) + 1, image_id=image_id, category_id=1,
                            bbox=[round(float(box[0]), 2), round(float(box[1]), 2), round(float(bw), 2),
                                  round(float(bh), 2)],
                            area=round(float(bw * bh), 2), iscrowd=int(vis < min_visible)))
        if max_tiles is not None:
            # keep the tiles with most annotations (deterministic), for quick tests
            counts = {im['id']: 0 for im in images}
            for a in annotations:
                counts[a['image_id']] += 1 - a['iscrowd']
            limit = max_tiles[split_idx]
            chosen = sorted(images, key=lambda im: (-counts[im['id']], im['file_name']))[:limit]
            chosen_ids = {im['id'] for im in chosen}
            for im in images:
                if im['id'] not in chosen_ids:
                    os.remove(osp.join(img_dir, im['file_name']))
            images = [im for im in images if im['id'] in chosen_ids]
            annotations = [a for a in annotations if a['image_id'] in chosen_ids]
        info = dict(description=f'DeepForest sample data ({split}), {tile}px tiles, '
                    'converted by mmdet-asl tools/dataset_converters/prepare_deepforest.py')
        if split == 'train' and missing_rate > 0:
            before = len(annotations)
            annotations, removals = remove_labels(annotations, missing_rate, 'box', seed)
            write_record(record_path, missing_rate, 'box', seed, before, len(annotations), removals)
            info.update(missing_rate=missing_rate, missing_unit='box', seed=seed)
        coco = dict(images=images, annotations=annotations,
                    categories=[dict(id=i + 1, name=c, supercategory='plant') for i, c in enumerate(CLASSES)],
                    info=info)
        with open(osp.join(out, 'annotations', f'{split}.json'), 'w') as f:
            json.dump(coco, f)
        n_obj = sum(1 - a['iscrowd'] for a in annotations)
        stats[split] = (len(images), n_obj, len(annotations) - n_obj)
        print(f'{split}: {len(images)} tiles, {n_obj} boxes, {len(annotations) - n_obj} ignored (iscrowd) '
              f'partial boxes, from {sources}', flush=True)
    return stats


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='data/deepforest', help='output folder (COCO layout)')
    parser.add_argument('--cache', default='data/cache', help='where the wheel and its data are kept')
    parser.add_argument('--wheel', help='a local deepforest wheel (otherwise pip download it into --cache)')
    parser.add_argument('--version', default=DEFAULT_VERSION, help='deepforest version to fetch')
    parser.add_argument('--tile-size', type=int, default=400)
    parser.add_argument('--min-visible', type=float, default=0.5,
                        help='fraction of a box inside a tile to keep it as an object (else iscrowd)')
    parser.add_argument('--max-tiles', type=int, nargs=2, metavar=('TRAIN', 'VAL'),
                        help='keep only this many tiles per split (the most annotated ones), for tests')
    parser.add_argument('--missing-rate', type=float, default=0.0,
                        help='remove this fraction of the train boxes, in [0, 1) (val stays complete)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the --missing-rate draws')
    args = parser.parse_args(argv)
    if not 0.0 <= args.missing_rate < 1.0:
        parser.error(f'--missing-rate must be in [0, 1) (the fraction of train boxes removed), '
                     f'got {args.missing_rate}')
    return args


def main(argv=None):
    args = parse_args(argv)
    wheel = args.wheel or fetch_wheel(args.cache, args.version)
    data_dir = extract_data(wheel, args.cache)
    convert(data_dir, args.out, args.tile_size, args.min_visible, args.max_tiles, args.missing_rate, args.seed)


if __name__ == '__main__':
    main()

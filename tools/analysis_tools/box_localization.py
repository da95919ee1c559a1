#!/usr/bin/env python
"""How tight are a detector's boxes? Best IoU per ground-truth box, the size and centre errors of the matches,
and what the highest-scored false positives are.

COCO AP averages over IoU thresholds 0.5-0.95, so a detector that finds objects but places loose boxes has a
high AP50 and a low AP75. This tool separates the two: for every (non-crowd) ground-truth box it takes the
best IoU of any prediction with score >= ``--score-thr``, prints the share of ground-truth boxes reaching each
IoU threshold, and for the matches with IoU >= ``--match-iou`` the median width and height ratio
(prediction / ground truth) and the median centre offset in units of the ground-truth size. Ratios near 1 and
offsets near 0 with a low share at IoU 0.75 mean the boxes scatter around the objects rather than being
biased one way.

AP50 also depends on ranking: a tree can have a good box that scores below a poor one. The error breakdown
takes the N highest-scored predictions over all images (N = the number of ground-truth boxes, and 2N),
matches them in score order at IoU 0.5 as COCO does, and sorts each one into: a true positive, a duplicate
(IoU >= 0.5 with an object already matched), a poorly placed box (best IoU in [0.1, 0.5)) or background
(best IoU < 0.1: nothing annotated there).

    python tools/test.py CONFIG CKPT --out preds.pkl --cfg-options model.test_cfg.score_thr=0.001
    python tools/analysis_tools/box_localization.py preds.pkl data/deepforest/annotations/val.json [--score-thr 0.2]
"""
import argparse
import json
import os.path as osp
import sys

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmdet_asl.compat import load_pickle_safely  # noqa: E402

IOU_THRS = (0.3, 0.5, 0.6, 0.7, 0.75, 0.8)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of boxes ``a`` (N, 4) and ``b`` (M, 4), both x1, y1, x2, y2."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / (area_a[:, None] + area_b[None] - inter)


def ground_truth_boxes(coco: dict) -> dict:
    """{image id: [[x1, y1, x2, y2], ...]} of the non-crowd boxes of a COCO annotation file's content."""
    gts = {}
    for ann in coco['annotations']:
        if not ann.get('iscrowd', 0):
            x, y, w, h = ann['bbox']
            gts.setdefault(ann['image_id'], []).append([x, y, x + w, y + h])
    return gts


def localization_stats(predictions: list, coco: dict, score_thr: float = 0.2, match_iou: float = 0.3) -> dict:
    """Best IoU per ground-truth box and the errors of the matched boxes.

    Args:
        predictions (list): ``tools/test.py --out`` records: dicts with ``img_id`` and ``pred_instances``
            holding ``bboxes`` (x1, y1, x2, y2) and ``scores``.
        coco (dict): the COCO annotation file's content (boxes x, y, w, h; ``iscrowd`` boxes are skipped).
        score_thr (float): predictions below this score are ignored.
        match_iou (float): a ground-truth box and its best prediction count as a match from this IoU on.

    Returns:
        dict: ``num_gt``, ``recall_at`` {IoU threshold: share of ground-truth boxes}, ``median_best_iou``,
        ``num_matched``, ``width_ratio``, ``height_ratio``, ``center_dx``, ``center_dy`` (medians over matches).
    """
    gts = ground_truth_boxes(coco)
    by_img = {int(p['img_id']): p for p in predictions}
    best, matched = [], []
    for img_id, boxes in gts.items():
        gt = np.asarray(boxes, dtype=np.float64)
        pred = by_img.get(img_id)
        det = np.zeros((0, 4))
        if pred is not None:
            inst = pred['pred_instances']
            scores = np.asarray(inst['scores'], dtype=np.float64)
            det = np.asarray(inst['bboxes'], dtype=np.float64).reshape(-1, 4)[scores >= score_thr]
        if len(det) == 0:
            best += [0.0] * len(gt)
            continue
        iou = box_iou(gt, det)
        j = iou.argmax(axis=1)
        for i, k in enumerate(j):
            best.append(float(iou[i, k]))
            if iou[i, k] >= match_iou:
                matched.append((gt[i], det[k]))
    if not best:
        raise ValueError('the annotation file has no (non-crowd) ground-truth box')
    best = np.asarray(best)
    out = dict(num_gt=len(best), recall_at={t: float(np.mean(best >= t)) for t in IOU_THRS},
               median_best_iou=float(np.median(best)), num_matched=len(matched))
    if matched:
        g = np.stack([m[0] for m in matched])
        d = np.stack([m[1] for m in matched])
        gw, gh = g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]
        out.update(width_ratio=float(np.median((d[:, 2] - d[:, 0]) / gw)),
                   height_ratio=float(np.median((d[:, 3] - d[:, 1]) / gh)),
                   center_dx=float(np.median(((d[:, 0] + d[:, 2]) - (g[:, 0] + g[:, 2])) / 2 / gw)),
                   center_dy=float(np.median(((d[:, 1] + d[:, 3]) - (g[:, 1] + g[:, 3])) / 2 / gh)))
    return out


ERROR_KINDS = ('true positive', 'duplicate', 'poorly placed', 'background')


def error_breakdown(predictions: list, coco: dict, tops=None, match_iou: float = 0.5,
                    placed_iou: float = 0.1) -> dict:
    """What the top-scored predictions are: {N: {kind: count}} for the N highest scores over all images.

    Predictions are matched per image in descending score order, each to the unmatched ground-truth box of
    highest IoU >= ``match_iou`` (COCO's greedy matching; crowd boxes are skipped). ``tops`` defaults to the
    number of ground-truth boxes and twice that.
    """
    gts = ground_truth_boxes(coco)
    num_gt = sum(len(v) for v in gts.values())
    if not num_gt:
        raise ValueError('the annotation file has no (non-crowd) ground-truth box')
    rows = []  # (score, kind)
    for pred in predictions:
        inst = pred['pred_instances']
        scores = np.asarray(inst['scores'], dtype=np.float64)
        det = np.asarray(inst['bboxes'], dtype=np.float64).reshape(-1, 4)
        gt = np.asarray(gts.get(int(pred['img_id']), []), dtype=np.float64).reshape(-1, 4)
        iou = box_iou(det, gt)  # (detections, 0) on an image without ground truth
        taken = np.zeros(len(gt), dtype=bool)
        for k in np.argsort(-scores, kind='stable'):
            best = float(iou[k].max(initial=0.0))
            free = np.where(taken, -1.0, iou[k])
            if free.max(initial=-1.0) >= match_iou:
                taken[free.argmax()] = True
                kind = 'true positive'
            elif best >= match_iou:
                kind = 'duplicate'
            elif best >= placed_iou:
                kind = 'poorly placed'
            else:
                kind = 'background'
            rows.append((float(scores[k]), kind))
    rows.sort(key=lambda r: -r[0])
    tops = tops or (num_gt, 2 * num_gt)
    return {n: {kind: sum(1 for _, k in rows[:n] if k == kind) for kind in ERROR_KINDS} for n in tops}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('predictions', help='pickle written by tools/test.py --out')
    parser.add_argument('ann_file', help='COCO annotation file of the same images')
    parser.add_argument('--score-thr', type=float, default=0.2)
    parser.add_argument('--match-iou', type=float, default=0.3)
    args = parser.parse_args(argv)
    # a pickle can name any code to run: only containers, numbers, strings, numpy arrays and tensors are read
    predictions = load_pickle_safely(args.predictions)
    with open(args.ann_file) as f:
        coco = json.load(f)
    s = localization_stats(predictions, coco, args.score_thr, args.match_iou)
    print(f"{s['num_gt']} ground-truth boxes; predictions with score >= {args.score_thr}")
    print('share of ground-truth boxes with a prediction at IoU >= ' +
          ', '.join(f'{t}: {v:.3f}' for t, v in s['recall_at'].items()))
    print(f"median best IoU {s['median_best_iou']:.3f}")
    if s['num_matched']:
        print(f"{s['num_matched']} matches (IoU >= {args.match_iou}), medians: width ratio {s['width_ratio']:.3f}, "
              f"height ratio {s['height_ratio']:.3f}, centre offset x {s['center_dx']:+.3f}, "
              f"y {s['center_dy']:+.3f} (of the box size)")
    for n, kinds in error_breakdown(predictions, coco).items():
        print(f'top {n} predictions by score (all scores): ' + ', '.join(f'{k} {v}' for k, v in kinds.items()))
    return s


if __name__ == '__main__':
    main()

"""Multi-label inference on images: labels with scores at a threshold and/or the top-k, on top of
MMPretrain's ``ImageClassificationInferencer`` (which reports only the arg-max class)."""
from typing import List, Optional, Sequence

import numpy as np

from ..evaluation.multilabel_metric import check_threshold


def select_labels(scores: Sequence[float], classes: Optional[Sequence[str]] = None, thr: float = 0.5,
                  topk: Optional[int] = None) -> List[dict]:
    """The predicted labels of one image, highest score first.

    A label is predicted when its score is >= ``thr``; with ``topk`` only the ``topk`` highest scores are
    candidates (``thr=0`` gives plain top-k), the convention of ``ASLMultiLabelMetric``'s top-k metrics.

    Args:
        scores (sequence of float): the (C,) sigmoid scores.
        classes (sequence of str, optional): class names; indices are reported without them.
        thr (float): score threshold in [0, 1]. Default 0.5.
        topk (int, optional): keep at most the k highest scores. Default None (all classes).

    Returns:
        list[dict]: ``dict(label=int, score=float, class_name=str)`` (``class_name`` only with ``classes``).
    """
    thr = check_threshold(thr)
    if topk is not None and (isinstance(topk, bool) or not isinstance(topk, (int, np.integer)) or topk < 1):
        raise ValueError(f'topk must be None or an int >= 1, got {topk!r}')
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not np.isfinite(scores).all():
        raise ValueError(f'{int((~np.isfinite(scores)).sum())} of {scores.size} scores are not finite')
    if classes is not None and len(classes) != scores.size:
        raise ValueError(f'{len(classes)} class names for {scores.size} scores')
    order = np.argsort(-scores, kind='stable')[:topk]
    picked = [int(i) for i in order if scores[i] >= thr]
    return [dict(label=i, score=float(scores[i]), **({'class_name': classes[i]} if classes is not None else {}))
            for i in picked]


def predict_multilabel(inferencer, images: Sequence, thr: float = 0.5, topk: Optional[int] = None) -> List[dict]:
    """Run an ``ImageClassificationInferencer`` and select the labels of each image (see :func:`select_labels`).

    Returns:
        list[dict]: per image ``dict(image=..., labels=[...], scores=[C floats])``.
    """
    results = inferencer(list(images))
    classes = inferencer.classes
    return [dict(image=img if isinstance(img, str) else f'array {i}',
                 labels=select_labels(r['pred_scores'], classes, thr, topk),
                 scores=[float(s) for s in r['pred_scores']]) for i, (img, r) in enumerate(zip(images, results))]

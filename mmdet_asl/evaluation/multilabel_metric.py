"""The paper's multi-label metrics in one MMPretrain metric: mAP (macro and micro), CP, CR, CF1, OP, OR, OF1,
at a threshold and for the top-k (k = 3) scores.

Definitions (per class c: TP_c true positives, P_c predicted positives, G_c ground-truth positives):

* AP_c: non-interpolated average precision, sum over the positives of the precision at their rank divided by
  G_c (MMPretrain's ``_average_precision``, the same as the official ASL ``helper_functions.mAP`` without ties).
  mAP = mean of AP_c over the classes with G_c > 0 (``ap_no_positive='skip'``, default; the number of skipped
  classes is logged), or over all classes with AP_c = 0 for the others (``'zero'``: the official ASL helper
  and MMPretrain's ``AveragePrecision``). ``mAP`` is the *macro* average; ``mAP_macro`` repeats it under
  its explicit name.
* mAP_micro: one AP over all (image, class) pairs pooled into a single ranking (the positives are the pairs
  with target 1; pairs of classes without positives take part as negatives). It weights each label slot
  equally, so frequent classes count more; the paper's Open Images table reports both averages.
* CP = mean_c TP_c / max(P_c, 1), CR = mean_c TP_c / max(G_c, 1) (MMPretrain's macro precision / recall,
  averaged over the same classes as mAP), CF1 = 2 CP CR / (CP + CR). Note: CF1 is the harmonic mean of CP
  and CR (ML-GCN's and the ASL paper's definition), *not* the mean of per-class F1 that MMPretrain's
  ``MultiLabelMetric(average='macro')`` reports as ``f1-score``.
* OP = sum TP / sum P, OR = sum TP / sum G, OF1 = 2 OP OR / (OP + OR) (MMPretrain's micro average).
* A label is predicted positive when its score >= ``thr``. For the top-k metrics (suffix ``_top3``) the k
  highest scores of each image are candidates and, with ``topk_with_thr=True`` (default, ML-GCN's convention),
  must also reach ``thr``; with ``False`` all k are predicted (MMPretrain's ``topk``).
* Targets of -1 (VOC difficult, Open Images untagged with ``untagged='ignore'``) are ignored everywhere: such
  a pair is neither a positive nor a negative, so a prediction on it is no false positive (CP, OP) and a miss
  no false negative (CR, OR), and it takes no part in any AP.
* ``topk`` larger than the number of classes C is clamped to C (every class is a candidate); the keys keep
  the configured name (``_top3`` on a 2-class set).

All values are percentages. Scores must be finite (a NaN or inf score raises ``ValueError`` naming how many
there are and where: a diverged model must not rank first), and ``thr`` must lie in [0, 1]. Targets must be
1, 0 or -1 (a NaN, a soft 0.5 or a 2 raises ``ValueError`` naming the image and the class), and at least
one (image, class) pair must have a known target (not all -1, not an empty set).
"""
from numbers import Integral
from typing import List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from mmpretrain.evaluation.metrics.multi_label import MultiLabelMetric, _average_precision
from mmpretrain.registry import METRICS
from mmpretrain.structures import label_to_onehot

METRIC_NAMES = ('mAP', 'mAP_macro', 'mAP_micro', 'CP', 'CR', 'CF1', 'OP', 'OR', 'OF1')


def check_threshold(thr) -> float:
    """Return ``thr`` as a float, or raise ``ValueError`` unless it is a number in [0, 1]."""
    try:
        value = float(thr)
    except (TypeError, ValueError):
        raise ValueError(f'thr must be a number in [0, 1], got {thr!r}') from None
    if not 0.0 <= value <= 1.0:  # also false for NaN
        raise ValueError(f'thr must be a number in [0, 1], got {thr!r}')
    return value


def check_finite_scores(pred: torch.Tensor) -> None:
    """Raise ``ValueError`` naming the count and the first (image, class) positions of non-finite scores."""
    bad = ~torch.isfinite(pred)
    if bad.any():
        where = [tuple(int(i) for i in idx) for idx in torch.nonzero(bad)[:5]]
        raise ValueError(f'{int(bad.sum())} of {pred.numel()} scores are not finite (NaN or inf), in '
                         f'{int(bad.any(1).sum())} of {pred.shape[0]} images; first (image, class) positions: '
                         f'{where}. A diverged model cannot be ranked: check the training loss.')


def check_targets(target: torch.Tensor) -> None:
    """Raise ``ValueError`` unless every target is 1, 0 or -1 and at least one is 0 or 1, naming the first
    (image, class) position of a bad value."""
    bad = ~((target == 1) | (target == 0) | (target == -1))  # NaN compares unequal to all three
    if bad.any():
        i, c = (int(v) for v in torch.nonzero(bad)[0])
        raise ValueError(f'targets must be 1 (positive), 0 (negative) or -1 (ignored); {int(bad.sum())} of '
                         f'{target.numel()} are not, first at image {i}, class {c}: {float(target[i, c])}')
    if target.numel() == 0:
        raise ValueError(f'no images to evaluate (targets of shape {tuple(target.shape)})')
    if not ((target == 0) | (target == 1)).any():
        raise ValueError(f'every target of the {target.shape[0]} images is -1 (ignored): nothing to evaluate')


def check_topk(topk) -> Optional[int]:
    """``topk`` as an int >= 1, or None; raise ``ValueError`` otherwise."""
    if topk is None:
        return None
    if isinstance(topk, bool) or not isinstance(topk, Integral) or topk < 1:
        raise ValueError(f'topk must be None or an integer >= 1, got {topk!r}')
    return int(topk)


def _f1(p: float, r: float) -> float:
    return 2.0 * p * r / (p + r) if p + r > 0 else 0.0


def multilabel_metrics(pred: torch.Tensor, target: torch.Tensor, thr: float = 0.5, topk: Optional[int] = 3,
                       topk_with_thr: bool = True, ap_no_positive: str = 'skip') -> dict:
    """Compute the metrics of the module docstring from (N, C) scores and (N, C) targets in {1, 0, -1}."""
    if ap_no_positive not in ('skip', 'zero'):
        raise ValueError(f"ap_no_positive must be 'skip' or 'zero', got {ap_no_positive!r}")
    thr = check_threshold(thr)
    pred = torch.as_tensor(pred).float()
    target = torch.as_tensor(target).float()
    if pred.dim() != 2 or pred.shape != target.shape:
        raise ValueError(f'pred and target must both be (N, C), got {tuple(pred.shape)} and {tuple(target.shape)}')
    topk = check_topk(topk)
    check_finite_scores(pred)
    check_targets(target)
    num_classes = pred.shape[1]
    has_pos = (target == 1).sum(0) > 0
    classes = has_pos if ap_no_positive == 'skip' else torch.ones_like(has_pos)
    # A class without positives has AP 0 ('zero') or none ('skip'); MMPretrain's helper fails on a class
    # whose targets are all -1, so it is only asked about classes with positives.
    ap = torch.stack([_average_precision(pred[:, k], target[:, k]) if has_pos[k] else torch.zeros(())
                      for k in range(num_classes)]) * 100.0
    macro = ap[classes].mean().item() if classes.any() else 0.0
    micro = _average_precision(pred.flatten(), target.flatten()).item() * 100.0 if has_pos.any() else 0.0
    results = dict(mAP=macro, mAP_macro=macro, mAP_micro=micro)

    def thresholded(scores, suffix, **kw):
        # MultiLabelMetric.calculate modifies its (long) inputs in place for -1 targets: pass copies.
        p_c, r_c, _, _ = MultiLabelMetric.calculate(scores.clone(), target.clone(), average=None, **kw)
        p_o, r_o, f_o, _ = MultiLabelMetric.calculate(scores.clone(), target.clone(), average='micro', **kw)
        cp = p_c[classes].mean().item() if classes.any() else 0.0
        cr = r_c[classes].mean().item() if classes.any() else 0.0
        results.update({f'CP{suffix}': cp, f'CR{suffix}': cr, f'CF1{suffix}': _f1(cp, cr),
                        f'OP{suffix}': p_o.item(), f'OR{suffix}': r_o.item(), f'OF1{suffix}': f_o.item()})

    thresholded(pred, '', thr=thr)
    if topk:
        k = min(int(topk), num_classes)
        if topk_with_thr:
            idx = pred.topk(k, dim=1).indices
            masked = torch.full_like(pred, float('-inf')).scatter_(1, idx, pred.gather(1, idx))
            thresholded(masked, f'_top{topk}', thr=thr)
        else:
            thresholded(pred, f'_top{topk}', thr=None, topk=k)
    results['_num_classes_skipped'] = int((~classes).sum())
    return results


@METRICS.register_module()
class ASLMultiLabelMetric(BaseMetric):
    """mAP (macro, micro), CP, CR, CF1, OP, OR, OF1 at ``thr`` and for the top-``topk`` scores.

    Definitions in the module docstring: ``mAP`` = ``mAP_macro`` = mean of the per-class APs;
    ``mAP_micro`` = AP over all (image, class) pairs pooled.

    Args:
        thr (float): score threshold in [0, 1]. Default 0.5.
        topk (int, optional): k of the top-k metrics; None to skip them. Default 3.
        topk_with_thr (bool): top-k labels must also reach ``thr`` (ML-GCN convention). Default True.
        ap_no_positive (str): 'skip' (default) or 'zero', for classes without positives.
        collect_device, prefix: as :class:`mmengine.evaluator.BaseMetric`. Default prefix 'multi-label'.
    """
    default_prefix: Optional[str] = 'multi-label'

    def __init__(self, thr: float = 0.5, topk: Optional[int] = 3, topk_with_thr: bool = True,
                 ap_no_positive: str = 'skip', collect_device: str = 'cpu', prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if ap_no_positive not in ('skip', 'zero'):
            raise ValueError(f"ap_no_positive must be 'skip' or 'zero', got {ap_no_positive!r}")
        self.thr = check_threshold(thr)
        self.topk = check_topk(topk)
        self.topk_with_thr = topk_with_thr
        self.ap_no_positive = ap_no_positive

    def process(self, data_batch, data_samples: Sequence[dict]):
        for sample in data_samples:
            score = sample['pred_score'].detach().cpu().float()
            if 'gt_score' in sample:
                gt = sample['gt_score'].detach().cpu().float()
            else:
                gt = label_to_onehot(sample['gt_label'], score.numel()).float()
            if 'gt_label_difficult' in sample:  # VOC: labels seen only on difficult objects are ignored
                difficult = set(int(i) for i in sample['gt_label_difficult']) - set(
                    int(i) for i in torch.nonzero(gt == 1).flatten())
                if difficult:
                    gt = gt.clone()
                    gt[list(difficult)] = -1
            self.results.append((score, gt))

    def compute_metrics(self, results: List) -> dict:
        pred = torch.stack([r[0] for r in results])
        target = torch.stack([r[1] for r in results])
        metrics = multilabel_metrics(pred, target, self.thr, self.topk, self.topk_with_thr, self.ap_no_positive)
        skipped = metrics.pop('_num_classes_skipped')
        if skipped:
            MMLogger.get_current_instance().warning(
                f'ASLMultiLabelMetric: {skipped} of {pred.shape[1]} classes have no positive label in the '
                f'{pred.shape[0]} evaluated images; mAP/CP/CR average over the others (ap_no_positive="skip")')
        return metrics

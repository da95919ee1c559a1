"""Behaviours of the multi-label metric that mutation testing (tools/misc/run_mutation.py evaluation) found
unchecked: the bounds of thr and topk, the non-finite and all-ignored messages, targets without positives,
the F1 of zero precision and recall, thr in the top-k metrics, the class's defaults and arguments, and its
warning about skipped classes. Expected values are worked out by hand in the comments."""
import math

import pytest
import torch

import mmdet_asl.evaluation.multilabel_metric as mm
from mmdet_asl.evaluation.multilabel_metric import (
    ASLMultiLabelMetric,
    check_finite_scores,
    check_targets,
    check_threshold,
    check_topk,
    multilabel_metrics,
)


def test_bounds_of_thr_and_topk_are_accepted():
    assert check_threshold(1.0) == 1.0 and check_threshold(0) == 0.0
    assert check_topk(1) == 1


def test_the_non_finite_message_counts_images_and_lists_five_positions():
    pred = torch.full((2, 3), float('nan'))
    with pytest.raises(ValueError) as info:
        check_finite_scores(pred)
    assert str(info.value) == ('6 of 6 scores are not finite (NaN or inf), in 2 of 2 images; first (image, class) '
                               'positions: [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]. A diverged model cannot be '
                               'ranked: check the training loss.')


def test_targets_of_zeros_and_ignored_slots_are_evaluated_and_all_ignored_names_the_image_count():
    check_targets(torch.tensor([[0., -1., -1.]]))  # one negative is something to evaluate
    check_targets(torch.tensor([[1., -1., -1.]]))  # and so is one positive
    with pytest.raises(ValueError) as info:
        check_targets(-torch.ones(2, 3))
    assert str(info.value) == 'every target of the 2 images is -1 (ignored): nothing to evaluate'


def test_targets_without_any_positive_give_zero_metrics():
    # 'skip' leaves no class to average: every average is 0.0, not the NaN of an empty mean
    results = multilabel_metrics(torch.tensor([[0.9, 0.1]]), torch.zeros(1, 2), topk=None)
    for key in ('mAP', 'mAP_micro', 'CP', 'CR', 'CF1'):
        assert results[key] == 0.0, key


def test_f1_of_precision_and_recall():
    assert mm._f1(0.0, 0.0) == 0.0
    assert math.isclose(mm._f1(0.3, 0.2), 2 * 0.3 * 0.2 / 0.5)  # 0.24, also below p + r = 1


def test_ap_no_positive_is_checked_and_zero_passed_on_by_the_metric():
    pred, target = torch.tensor([[0.9, 0.2], [0.1, 0.3]]), torch.tensor([[1., 0.], [0., 0.]])
    with pytest.raises(ValueError) as info:
        multilabel_metrics(pred, target, ap_no_positive='ZERO')
    assert str(info.value) == "ap_no_positive must be 'skip' or 'zero', got 'ZERO'"
    # class 0: AP 100 (its positive is ranked first); class 1 has no positive: AP 0 under 'zero'
    metric = ASLMultiLabelMetric(ap_no_positive='zero', topk=None)
    assert metric.compute_metrics([(pred[0], target[0]), (pred[1], target[1])])['mAP'] == pytest.approx(50.0)


def test_top_k_labels_must_reach_thr_by_default():
    # top-2 of [0.8, 0.4, 0.1] is classes 0 and 1; only 0.8 reaches thr 0.5: recall 1 of 2 positives
    pred, target = torch.tensor([0.8, 0.4, 0.1]), torch.tensor([1., 1., 0.])
    assert ASLMultiLabelMetric(topk=2).compute_metrics([(pred, target)])['OR_top2'] == pytest.approx(50.0)
    # the function's default top-k is 3 and keeps thr too (3 classes: the thresholded metrics again)
    results = multilabel_metrics(pred[None], target[None])
    assert results['OR_top3'] == pytest.approx(50.0) and 'OR_top4' not in results
    # with thr 0.9 neither top-2 label counts
    assert multilabel_metrics(pred[None], target[None], thr=0.9, topk=2)['OR_top2'] == 0.0


def test_prefix_and_collect_device_are_passed_to_base_metric():
    metric = ASLMultiLabelMetric(prefix='val', collect_device='gpu')
    assert (metric.prefix, metric.collect_device) == ('val', 'gpu')


def test_the_warning_names_skipped_classes_and_image_count(monkeypatch):
    warnings = []

    class Logger:
        def warning(self, message):
            warnings.append(message)

    monkeypatch.setattr(mm.MMLogger, 'get_current_instance', staticmethod(lambda: Logger()))
    pred = torch.tensor([[0.9, 0.1], [0.2, 0.3], [0.6, 0.4]])
    target = torch.tensor([[1., 0.], [0., 0.], [1., 0.]])
    ASLMultiLabelMetric(topk=None).compute_metrics(list(zip(pred, target)))
    assert warnings == ['ASLMultiLabelMetric: 1 of 2 classes have no positive label in the 3 evaluated images; '
                        'mAP/CP/CR average over the others (ap_no_positive="skip")']

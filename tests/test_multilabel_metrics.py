"""The paper's multi-label metrics against a hand-computed example (values derived in the comments)."""
import pytest
import torch
from mmengine.evaluator import Evaluator

from mmpretrain.evaluation import AveragePrecision, MultiLabelMetric
from mmpretrain.structures import DataSample

import mmdet_asl.evaluation  # noqa: F401
from mmdet_asl.evaluation import ASLMultiLabelMetric, multilabel_metrics

PRED = torch.tensor([[0.9, 0.8, 0.3, 0.2],
                     [0.1, 0.6, 0.2, 0.7],
                     [0.7, 0.5, 0.9, 0.3],
                     [0.8, 0.1, 0.4, 0.6]])
TARGET = torch.tensor([[1, 1, 0, 0],
                       [0, 1, 0, 0],
                       [0, 0, 1, 1],
                       [1, 0, 0, 0]])
# AP by hand (positives' precision at their rank / #positives):
#   class 0: ranks s0(+) s3(+) s2 s1 -> (1/1 + 2/2)/2 = 1;  class 1: s0(+) s1(+) -> 1;  class 2: s2(+) -> 1
#   class 3: s1 s3 s2(+) s0 -> (1/3)/1;  mAP = (3 + 1/3)/4 = 83.333 %
# thr 0.5 (score >= 0.5 is positive): predicted s0:{0,1} s1:{1,3} s2:{0,1,2} s3:{0,3}
#   per class TP/P/G: c0 2/3/2, c1 2/3/2, c2 1/1/1, c3 0/2/1
#   CP = (2/3 + 2/3 + 1 + 0)/4 = 58.333, CR = (1 + 1 + 1 + 0)/4 = 75, CF1 = 2 CP CR/(CP + CR) = 65.625
#   OP = 5/9 = 55.556, OR = 5/6 = 83.333, OF1 = 2*5/(9 + 6) = 66.667
HAND_THR = dict(mAP=250 / 3, CP=175 / 3, CR=75.0, CF1=65.625, OP=500 / 9, OR=250 / 3, OF1=200 / 3)
# top-2 (also >= 0.5): s2 loses class 1 (0.5, third) -> c1 TP/P = 2/2
#   CP = (2/3 + 1 + 1 + 0)/4 = 66.667, CR = 75, CF1 = 2 (2/3)(3/4)/(2/3 + 3/4) = 12/17 = 70.588
#   OP = 5/8 = 62.5, OR = 83.333, OF1 = 10/14 = 71.429
HAND_TOP2 = dict(CP=200 / 3, CR=75.0, CF1=1200 / 17, OP=62.5, OR=250 / 3, OF1=1000 / 14)
# top-3 without the threshold: s0:{0,1,2} s1:{3,1,2} s2:{2,0,1} s3:{0,3,2}
#   c0 2/3/2, c1 2/3/2, c2 1/4/1, c3 0/2/1 -> CP = (2/3 + 2/3 + 1/4)/4 = 39.583, CR = 75,
#   OP = 5/12 = 41.667, OR = 83.333, OF1 = 10/18 = 55.556
HAND_TOP3_PLAIN = dict(CP=1900 / 48, CR=75.0, CF1=2 * (1900 / 48) * 75 / (1900 / 48 + 75), OP=500 / 12,
                       OR=250 / 3, OF1=1000 / 18)


def _check(result, expected, suffix=''):
    for key, value in expected.items():
        assert result[key + suffix] == pytest.approx(value, abs=1e-3), key + suffix


def test_hand_computed_threshold_and_topk():
    res = multilabel_metrics(PRED, TARGET, thr=0.5, topk=2)
    _check(res, HAND_THR)
    _check(res, HAND_TOP2, '_top2')
    # top-3 with the threshold keeps exactly the thresholded predictions here
    res3 = multilabel_metrics(PRED, TARGET, thr=0.5, topk=3)
    _check(res3, {k: v for k, v in HAND_THR.items() if k != 'mAP'}, '_top3')
    res3_plain = multilabel_metrics(PRED, TARGET, thr=0.5, topk=3, topk_with_thr=False)
    _check(res3_plain, HAND_TOP3_PLAIN, '_top3')


def test_agrees_with_mmpretrain_where_definitions_coincide():
    res = multilabel_metrics(PRED, TARGET, thr=0.5, topk=None)
    assert AveragePrecision.calculate(PRED, TARGET).item() == pytest.approx(res['mAP'], abs=1e-4)
    p, r, f, _ = MultiLabelMetric.calculate(PRED, TARGET, thr=0.5, average='micro')
    assert (p.item(), r.item(), f.item()) == pytest.approx((res['OP'], res['OR'], res['OF1']), abs=1e-4)
    p, r, f, _ = MultiLabelMetric.calculate(PRED, TARGET, thr=0.5, average='macro')
    assert (p.item(), r.item()) == pytest.approx((res['CP'], res['CR']), abs=1e-4)
    # MMPretrain's macro f1-score is the mean of per-class F1 (0.8, 0.8, 1, 0 -> 65.0), not CF1 (65.625).
    assert f.item() == pytest.approx(65.0, abs=1e-4)
    assert res['CF1'] != pytest.approx(f.item(), abs=1e-2)


def test_classes_without_positives_and_ignored_targets():
    pred = torch.cat([PRED, torch.tensor([[0.9], [0.1], [0.2], [0.3]])], dim=1)
    target = torch.cat([TARGET, torch.zeros(4, 1, dtype=torch.long)], dim=1)
    skip = multilabel_metrics(pred, target, topk=None, ap_no_positive='skip')
    zero = multilabel_metrics(pred, target, topk=None, ap_no_positive='zero')
    assert skip['mAP'] == pytest.approx(250 / 3, abs=1e-3)  # the empty class is left out
    assert zero['mAP'] == pytest.approx(250 / 3 * 4 / 5, abs=1e-3)  # AP 0, as the official helper
    assert skip['_num_classes_skipped'] == 1 and zero['_num_classes_skipped'] == 0
    assert skip['CP'] == pytest.approx(HAND_THR['CP'], abs=1e-3)
    # The false positive of the empty class still counts in the overall precision.
    assert skip['OP'] == pytest.approx(500 / 10, abs=1e-3)
    # -1 targets are ignored: marking class 3 of sample 1 (a false positive at 0.7) as unknown
    ignored = TARGET.clone()
    ignored[1, 3] = -1
    res = multilabel_metrics(PRED, ignored, topk=None)
    assert res['OP'] == pytest.approx(500 / 8, abs=1e-3)
    assert res['mAP'] == pytest.approx((3 + 1 / 2) / 4 * 100, abs=1e-3)  # class 3: s3 s2(+) -> 1/2


def test_evaluator_keys_and_values():
    samples = [DataSample().set_pred_score(p).set_gt_score(t.float()) for p, t in zip(PRED, TARGET)]
    evaluator = Evaluator(metrics=dict(type='mmpretrain.ASLMultiLabelMetric', thr=0.5, topk=3))
    evaluator.process(samples)
    res = evaluator.evaluate(len(samples))
    names = ('mAP', 'mAP_macro', 'mAP_micro', 'CP', 'CR', 'CF1', 'OP', 'OR', 'OF1')
    expected = {f'multi-label/{k}' for k in names} | {f'multi-label/{k}_top3' for k in names[3:]}
    assert set(res) == expected
    assert res['multi-label/CF1'] == pytest.approx(65.625, abs=1e-3)
    # gt_label indices work too (the data preprocessor may leave only gt_label)
    samples = [DataSample().set_pred_score(p).set_gt_label(torch.nonzero(t).flatten()) for p, t in zip(PRED, TARGET)]
    evaluator = Evaluator(metrics=ASLMultiLabelMetric(topk=None))
    evaluator.process(samples)
    assert evaluator.evaluate(4)['multi-label/mAP'] == pytest.approx(250 / 3, abs=1e-3)


def test_voc_difficult_labels_are_ignored():
    samples = []
    for p, t in zip(PRED, TARGET):
        s = DataSample().set_pred_score(p).set_gt_score(t.float())
        s.set_metainfo(dict(gt_label_difficult=[]))
        samples.append(s)
    samples[1].set_metainfo(dict(gt_label_difficult=[3]))  # only a difficult object of class 3 on sample 1
    metric = ASLMultiLabelMetric(topk=None)
    metric.process(None, [s.to_dict() for s in samples])
    assert metric.compute_metrics(metric.results)['OP'] == pytest.approx(500 / 8, abs=1e-3)


def test_bad_arguments():
    with pytest.raises(ValueError, match='ap_no_positive'):
        ASLMultiLabelMetric(ap_no_positive='nan')
    with pytest.raises(ValueError, match='topk'):
        ASLMultiLabelMetric(topk=0)
    with pytest.raises(ValueError, match='must both be'):
        multilabel_metrics(PRED, TARGET[:, :3])


def test_macro_and_micro_map_by_hand():
    pred = torch.tensor([[0.9, 0.2], [0.6, 0.7], [0.3, 0.4]])
    target = torch.tensor([[1, 0], [0, 1], [1, 0]])
    res = multilabel_metrics(pred, target, topk=None)
    # macro: class 0 ranks .9(+) .6 .3(+) -> (1 + 2/3)/2; class 1 ranks .7(+) first -> 1; mean 11/12
    assert res['mAP'] == res['mAP_macro'] == pytest.approx(1100 / 12, abs=1e-3)
    # micro: all 6 pairs pooled .9(+) .7(+) .6 .4 .3(+) .2 -> (1/1 + 2/2 + 3/5)/3
    assert res['mAP_micro'] == pytest.approx(260 / 3, abs=1e-3)
    ignored = target.clone()
    ignored[1, 0] = -1  # the pair scored .6 leaves the pooled ranking: (1 + 1 + 3/4)/3
    assert multilabel_metrics(pred, ignored, topk=None)['mAP_micro'] == pytest.approx(275 / 3, abs=1e-3)


@pytest.mark.parametrize('bad', [float('nan'), float('inf'), float('-inf')])
def test_non_finite_scores_raise(bad):
    pred = torch.tensor([[bad, 0.2], [0.3, 0.4]])
    with pytest.raises(ValueError, match=r'1 of 4 scores are not finite.*\(0, 0\)'):
        multilabel_metrics(pred, torch.tensor([[1, 0], [0, 1]]))
    metric = ASLMultiLabelMetric()
    metric.process(None, [dict(pred_score=torch.full((2, ), bad), gt_score=torch.tensor([1., 0.]))] +
                   [dict(pred_score=torch.tensor([0.3, 0.4]), gt_score=torch.tensor([0., 1.]))])
    with pytest.raises(ValueError, match=r'2 of 4 scores are not finite .*in 1 of 2 images'):
        metric.compute_metrics(metric.results)


@pytest.mark.parametrize('thr', [float('nan'), -0.1, 1.5, 'half', None])
def test_threshold_outside_unit_interval_is_rejected(thr):
    with pytest.raises(ValueError, match='thr must be a number in'):
        ASLMultiLabelMetric(thr=thr)
    with pytest.raises(ValueError, match='thr must be a number in'):
        multilabel_metrics(PRED, TARGET, thr=thr)


def test_unknown_target_on_a_predicted_slot_is_no_false_positive():
    """-1 at (image 2, class 0), a prediction at 0.7 >= thr: ignored, not a false positive (as a 0 would be).
    Class 0 then has TP/P/G = 2/2/2 instead of 2/3/2 (HAND_THR's other classes unchanged):
      CP = (1 + 2/3 + 1 + 0)/4 = 66.667, CR = 75, OP = 5/8 = 62.5, OR = 5/6 = 83.333.
    top-2 with thr: s0 {0,1}, s1 {3,1}, s2 {2,0}, s3 {0,3}: c0 2/2/2 (s2 ignored), c1 2/2/2, c2 1/1/1, c3 0/2/1:
      CP = CR = 3/4 = 75, OP = 5/7, OR = 5/6."""
    unknown = TARGET.clone()
    unknown[2, 0] = -1
    res = multilabel_metrics(PRED, unknown, thr=0.5, topk=2)
    cp, cr = 200 / 3, 75.0
    _check(res, dict(CP=cp, CR=cr, CF1=2 * cp * cr / (cp + cr), OP=62.5, OR=250 / 3, OF1=2 * 5 / (8 + 6) * 100))
    _check(res, dict(CP=75.0, CR=75.0, CF1=75.0, OP=500 / 7, OR=250 / 3, OF1=2 * 5 / (7 + 6) * 100), '_top2')
    # as a negative it would count: the plain 0 gives HAND_THR's CP and OP
    assert multilabel_metrics(PRED, TARGET, thr=0.5, topk=None)['CP'] == pytest.approx(175 / 3, abs=1e-3)
    # the ranking of class 0 is s0(+) s3(+) [s2 ignored] s1: AP 1 either way; mAP stays 250/3
    assert res['mAP'] == pytest.approx(250 / 3, abs=1e-3)


def test_a_class_whose_targets_are_all_unknown_is_skipped():
    """A fifth class with every target -1 (and a 0.9 score that would be a false positive as a 0): no AP, no
    CP/CR entry, no false positive in OP; the four other classes give HAND_THR."""
    pred = torch.cat([PRED, torch.tensor([[0.9], [0.1], [0.2], [0.3]])], dim=1)
    target = torch.cat([TARGET, torch.full((4, 1), -1)], dim=1)
    res = multilabel_metrics(pred, target, thr=0.5, topk=None)
    _check(res, HAND_THR)
    assert res['_num_classes_skipped'] == 1
    zero = multilabel_metrics(pred, target, thr=0.5, topk=None, ap_no_positive='zero')
    assert zero['mAP'] == pytest.approx(250 / 3 * 4 / 5, abs=1e-3)


@pytest.mark.parametrize('bad', [float('nan'), 0.5, 0.9, 2.0, -0.5])
def test_targets_other_than_one_zero_minus_one_are_refused(bad):
    target = TARGET.clone().float()
    target[2, 1] = bad
    with pytest.raises(ValueError, match=r'targets must be 1 \(positive\), 0 \(negative\) or -1 \(ignored\); 1 of 16 '
                                         r'are not, first at image 2, class 1'):
        multilabel_metrics(PRED, target)
    metric = ASLMultiLabelMetric()
    metric.process(None, [dict(pred_score=p, gt_score=t) for p, t in zip(PRED, target)])
    with pytest.raises(ValueError, match='image 2, class 1'):
        metric.compute_metrics(metric.results)


@pytest.mark.parametrize('target,match', [(torch.full((4, 4), -1), 'every target of the 4 images is -1'),
                                          (torch.zeros(0, 4), 'no images to evaluate')])
def test_nothing_known_to_evaluate_is_a_clear_error(target, match):
    with pytest.raises(ValueError, match=match):
        multilabel_metrics(PRED[:target.shape[0]], target)


@pytest.mark.parametrize('topk', [-1, 0, 2.5, True, '3'])
def test_topk_must_be_a_positive_integer(topk):
    with pytest.raises(ValueError, match='topk must be None or an integer >= 1'):
        multilabel_metrics(PRED, TARGET, topk=topk)
    with pytest.raises(ValueError, match='topk must be None or an integer >= 1'):
        ASLMultiLabelMetric(topk=topk)


@pytest.mark.parametrize('topk_with_thr', [True, False])
def test_topk_above_the_class_count_is_clamped(topk_with_thr):
    """topk = 3 (the default) on 2 classes: every class is a candidate, the keys keep the name _top3.
    pred / target: s0 (.9+, .2), s1 (.6, .7+), s2 (.3+, .4)
      with thr .5: predicted s0 {0}, s1 {0, 1}: c0 TP/P/G 1/2/2, c1 1/1/1: CP = 75, CR = 75, OP = OR = 2/3
      without thr: all 6 predicted: c0 2/3/2, c1 1/3/1: CP = 50, CR = 100, OP = 3/6 = 50, OR = 100"""
    pred = torch.tensor([[0.9, 0.2], [0.6, 0.7], [0.3, 0.4]])
    target = torch.tensor([[1, 0], [0, 1], [1, 0]])
    res = multilabel_metrics(pred, target, thr=0.5, topk=3, topk_with_thr=topk_with_thr)
    if topk_with_thr:
        expected = dict(CP=75.0, CR=75.0, CF1=75.0, OP=200 / 3, OR=200 / 3, OF1=200 / 3)
    else:
        expected = dict(CP=50.0, CR=100.0, CF1=200 / 3, OP=50.0, OR=100.0, OF1=200 / 3)
    _check(res, expected, '_top3')
    evaluator = Evaluator(metrics=dict(type='mmpretrain.ASLMultiLabelMetric', topk_with_thr=topk_with_thr))
    evaluator.process([DataSample().set_pred_score(p).set_gt_score(t.float()) for p, t in zip(pred, target)])
    got = evaluator.evaluate(3)
    for key, value in expected.items():
        assert got[f'multi-label/{key}_top3'] == pytest.approx(value, abs=1e-3), key


def test_threshold_zero_predicts_every_label():
    """thr = 0 is allowed ([0, 1]): all 16 pairs predicted. Per class TP/P/G: c0 2/4/2, c1 2/4/2, c2 1/4/1,
    c3 1/4/1 -> CP = (1/2 + 1/2 + 1/4 + 1/4)/4 = 37.5, CR = 100, OP = 6/16 = 37.5, OR = 100."""
    res = multilabel_metrics(PRED, TARGET, thr=0.0, topk=None)
    _check(res, dict(CP=37.5, CR=100.0, CF1=2 * 37.5 * 100 / 137.5, OP=37.5, OR=100.0, OF1=2 * 37.5 * 100 / 137.5))
    assert ASLMultiLabelMetric(thr=0.0).thr == 0.0

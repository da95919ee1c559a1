"""tools/analysis_tools/box_localization.py: best IoU per ground-truth box and match errors, by hand; the
predictions pickle is read without running code it names."""
import json
import os
import pickle

import numpy as np
import pytest
import torch

from test_detection_e2e import load_tool as load_script


def load_tool():
    return load_script('analysis_tools/box_localization')


COCO = {'annotations': [
    dict(image_id=1, bbox=[0, 0, 10, 10], iscrowd=0),     # matched by a box shifted 2 px right: IoU 80/120
    dict(image_id=1, bbox=[50, 50, 20, 10], iscrowd=0),   # matched by a box twice as wide: IoU 0.5
    dict(image_id=1, bbox=[100, 0, 10, 10], iscrowd=1),   # crowd: skipped
    dict(image_id=2, bbox=[0, 0, 10, 10], iscrowd=0),     # its only prediction is under the score threshold
]}
PREDS = [
    dict(img_id=1, pred_instances=dict(bboxes=torch.tensor([[2., 0., 12., 10.], [50., 50., 90., 60.],
                                                            [100., 0., 110., 10.]]),
                                       scores=torch.tensor([0.9, 0.5, 0.9]))),
    dict(img_id=2, pred_instances=dict(bboxes=torch.tensor([[0., 0., 10., 10.]]), scores=torch.tensor([0.1]))),
]


def test_best_iou_and_match_errors_by_hand():
    s = load_tool().localization_stats(PREDS, COCO, score_thr=0.2, match_iou=0.3)
    assert s['num_gt'] == 3 and s['num_matched'] == 2
    # best IoUs: 80/120, 0.5, 0 (the image-2 box's prediction scores 0.1 < 0.2)
    assert s['median_best_iou'] == pytest.approx(0.5)
    assert s['recall_at'][0.5] == pytest.approx(2 / 3)
    assert s['recall_at'][0.6] == pytest.approx(1 / 3)
    assert s['recall_at'][0.75] == 0
    assert s['width_ratio'] == pytest.approx(np.median([1.0, 2.0]))
    assert s['height_ratio'] == pytest.approx(1.0)
    # centre offsets in box widths: +0.2 (2 px of 10) and +0.5 (10 px of 20)
    assert s['center_dx'] == pytest.approx(0.35) and s['center_dy'] == pytest.approx(0.0)


def test_threshold_zero_counts_the_low_score_box_and_cli_reads_files(tmp_path):
    tool = load_tool()
    assert tool.localization_stats(PREDS, COCO, score_thr=0.0)['recall_at'][0.8] == pytest.approx(1 / 3)
    pkl, ann = tmp_path / 'preds.pkl', tmp_path / 'val.json'
    pkl.write_bytes(pickle.dumps(PREDS))
    ann.write_text(__import__('json').dumps(COCO))
    assert tool.main([str(pkl), str(ann), '--score-thr', '0.2'])['num_matched'] == 2


def test_no_ground_truth_is_an_error():
    with pytest.raises(ValueError, match='no .*ground-truth'):
        load_tool().localization_stats(PREDS, {'annotations': []})


def test_error_breakdown_by_hand():
    tool = load_tool()
    # image 1 in score order: the shifted box (IoU 0.67, TP), the crowd-region box (0.9, background: crowd
    # boxes are skipped), the wide box (IoU 0.5, TP); image 2: exact box (TP); 3 ground-truth boxes
    assert tool.error_breakdown(PREDS, COCO) == {
        3: {'true positive': 2, 'duplicate': 0, 'poorly placed': 0, 'background': 1},
        6: {'true positive': 3, 'duplicate': 0, 'poorly placed': 0, 'background': 1}}
    coco = {'annotations': [dict(image_id=3, bbox=[0, 0, 10, 10])]}
    preds = [dict(img_id=3, pred_instances=dict(
        bboxes=torch.tensor([[50., 50., 60., 60.], [0., 0., 10., 30.], [1., 0., 11., 10.], [0., 0., 10., 10.]]),
        scores=torch.tensor([0.4, 0.6, 0.7, 0.8])))]
    # 0.8 exact: TP; 0.7 IoU 0.82 with the matched box: duplicate; 0.6 IoU 1/3: poorly placed; 0.4: background
    assert tool.error_breakdown(preds, coco, tops=(2, 4)) == {
        2: {'true positive': 1, 'duplicate': 1, 'poorly placed': 0, 'background': 0},
        4: {'true positive': 1, 'duplicate': 1, 'poorly placed': 1, 'background': 1}}
    unannotated = [dict(img_id=4, pred_instances=dict(bboxes=torch.tensor([[0., 0., 10., 10.]]),
                                                       scores=torch.tensor([0.9])))]
    # a box on an image without ground truth is background, and ranks first here
    assert tool.error_breakdown(unannotated + preds, coco, tops=(1, ))[1]['background'] == 1
    with pytest.raises(ValueError, match='no .*ground-truth'):
        tool.error_breakdown(preds, {'annotations': []})


class RunsCommand:
    """Pickles as ``os.system(command)``: unpickling it with plain pickle runs the command."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command, )


def test_cli_refuses_a_pickle_that_runs_code(tmp_path):
    from mmdet_asl.compat import SafeLoadError
    marker, pkl, ann = tmp_path / 'ran', tmp_path / 'preds.pkl', tmp_path / 'val.json'
    pkl.write_bytes(pickle.dumps(PREDS + [RunsCommand(f'touch {marker}')], protocol=2))
    ann.write_text(json.dumps(COCO))
    with pytest.raises(SafeLoadError, match='refused to load: global posix.system is not allowed') as info:
        load_tool().main([str(pkl), str(ann)])
    assert str(pkl) in str(info.value)
    assert not marker.exists()


def test_cli_reads_predictions_as_tools_test_writes_them(tmp_path):
    """tools/test.py --out writes DumpDetResults' records with mmengine.dump (pickle protocol 2): tensors,
    numpy arrays and scalars, tuples, strings."""
    import mmengine
    records = [dict(p, img_path=f'{p["img_id"]}.jpg', ori_shape=(120, 110), scale_factor=(np.float64(1.0), 1.0),
                    homography_matrix=np.eye(3, dtype=np.float32),
                    pred_instances=dict(p['pred_instances'], labels=torch.zeros(len(p['pred_instances']['scores']),
                                                                                dtype=torch.int64)))
               for p in PREDS]
    pkl, ann = tmp_path / 'preds.pkl', tmp_path / 'val.json'
    mmengine.dump(records, str(pkl))
    ann.write_text(json.dumps(COCO))
    assert load_tool().main([str(pkl), str(ann), '--score-thr', '0.2']) == \
        load_tool().localization_stats(PREDS, COCO, score_thr=0.2, match_iou=0.3)

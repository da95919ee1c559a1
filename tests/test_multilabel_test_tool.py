"""tools/test.py on a multi-label (MMPretrain) config prints the multi-label metrics, and demo/multilabel_demo.py
turns an image into labels with scores, both from a checkpoint trained by tools/train.py on Fashion-MNIST
canvases."""
import importlib.util
import json
import os.path as osp
import pickle
import sys

import numpy as np
import pytest

import mmdet_asl  # noqa: F401
from mmdet_asl.utils.inference import select_labels

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CONFIG = osp.join(ROOT, 'configs', 'multilabel', 'resnet18-w16_asl_1xb64_fashion-canvas.py')
sys.path.insert(0, osp.join(ROOT, 'tools', 'dataset_converters'))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import make_fashion_canvases as mfc  # noqa: E402

from test_multilabel_datasets import fashion_source  # noqa: E402


def load_script(path):
    spec = importlib.util.spec_from_file_location(f'mmdet_asl_script_{osp.basename(path)[:-3]}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def data_options(root):
    opts = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.dataset.data_root={root}', f'{loader}.num_workers=0',
                 f'{loader}.persistent_workers=False', f'{loader}.batch_size=4']
    return opts


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('ml_test_tool')
    canvases = str(tmp / 'canvas')
    assert mfc.main(['--src', fashion_source(tmp), '--out', canvases, '--num-train', '8', '--num-test', '6']) == 0
    work = str(tmp / 'work')
    load_script(osp.join(ROOT, 'tools', 'train.py')).main(
        [DEMO_CONFIG, '--work-dir', work, '--cfg-options', *data_options(canvases), 'train_cfg.max_epochs=1',
         'train_cfg.val_interval=5', 'default_hooks.checkpoint.interval=1', 'log_level=WARNING'])
    return canvases, work, osp.join(work, 'epoch_1.pth')


def test_test_tool_prints_multilabel_metrics(trained, tmp_path, capsys):
    canvases, work, ckpt = trained
    out, metrics_json = str(tmp_path / 'preds.pkl'), str(tmp_path / 'metrics.json')
    metrics = load_script(osp.join(ROOT, 'tools', 'test.py')).main(
        [DEMO_CONFIG, ckpt, '--work-dir', work, '--out', out, '--json', metrics_json, '--cfg-options',
         *data_options(canvases)])
    printed = capsys.readouterr().out
    assert 'Multi-label metrics' in printed and 'COCO box' not in printed and 'nan' not in printed
    for key in ('mAP', 'mAP_micro', 'CF1', 'OF1', 'CF1_top3'):
        assert 0 <= metrics[f'multi-label/{key}'] <= 100, key
    saved = json.load(open(metrics_json))
    assert saved['mAP'] == pytest.approx(metrics['multi-label/mAP'])
    assert saved['mAP_micro'] == pytest.approx(metrics['multi-label/mAP_micro'])
    with open(out, 'rb') as f:
        dumped = pickle.load(f)
    assert len(dumped) == 6 and dumped[0]['pred_score'].shape == (10, )

    # the demo on the first test canvas gives the scores test.py computed for it
    demo = load_script(osp.join(ROOT, 'demo', 'multilabel_demo.py'))
    first = next(d for d in dumped if osp.basename(d['img_path']) == '000000.png')
    image = osp.join(canvases, 'test', '000000.png')
    preds = demo.main([image, '--config', DEMO_CONFIG, '--checkpoint', ckpt, '--thr', '0', '--topk', '3'])
    np.testing.assert_allclose(preds[0]['scores'], first['pred_score'].numpy(), atol=1e-5)
    labels = preds[0]['labels']
    assert len(labels) == 3 and [p['score'] for p in labels] == sorted((p['score'] for p in labels), reverse=True)
    assert {p['class_name'] for p in labels} <= set(mfc.CLASSES)
    assert labels[0]['label'] == int(np.argmax(first['pred_score'].numpy()))
    assert image in capsys.readouterr().out


def test_demo_names_missing_files(tmp_path):
    demo = load_script(osp.join(ROOT, 'demo', 'multilabel_demo.py'))
    with pytest.raises(FileNotFoundError, match='nothing.png'):
        demo.main([str(tmp_path / 'nothing.png'), '--config', DEMO_CONFIG, '--checkpoint', DEMO_CONFIG])


def test_select_labels_threshold_and_topk():
    scores, classes = [0.2, 0.9, 0.55, 0.7], ['a', 'b', 'c', 'd']
    assert [p['class_name'] for p in select_labels(scores, classes, thr=0.5)] == ['b', 'd', 'c']
    assert [p['label'] for p in select_labels(scores, thr=0.5, topk=2)] == [1, 3]
    assert [p['label'] for p in select_labels(scores, thr=0.0, topk=3)] == [1, 3, 2]
    assert select_labels(scores, thr=0.95) == []
    for kwargs, match in ((dict(thr=float('nan')), 'thr'), (dict(thr=1.5), 'thr'), (dict(topk=0), 'topk'),
                          (dict(topk=1.5), 'topk')):
        with pytest.raises(ValueError, match=match):
            select_labels(scores, **kwargs)
    with pytest.raises(ValueError, match='not finite'):
        select_labels([0.1, float('nan')])
    with pytest.raises(ValueError, match='2 class names for 4 scores'):
        select_labels(scores, ['a', 'b'])

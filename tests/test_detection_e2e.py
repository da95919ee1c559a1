"""End to end on real data: a handful of DeepForest tiles (the demo's data) -> tools/train.py -> tools/test.py
-> COCO metrics that pycocotools reproduces from the dumped predictions. Also: MMDetection's own
tools/train.py runs a swap config and the demo config (one epoch each)."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
CACHE = osp.join(ROOT, 'data', 'cache')


def load_tool(name):
    import importlib.util
    module_name = 'mmdet_asl_tools_' + name.replace('/', '_')
    spec = importlib.util.spec_from_file_location(module_name, osp.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seeded_random_model(config):
    """The config's detector with seeded random weights (no pretrained file read), for tests of geometry and
    layout rather than accuracy."""
    import torch
    from mmengine.config import Config

    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


@pytest.fixture(scope='session')
def deepforest_small(tmp_path_factory):
    """4 train + 2 val tiles of the real DeepForest data (the wheel is fetched once into data/cache/)."""
    prep = load_tool('dataset_converters/prepare_deepforest')
    try:
        wheel = prep.fetch_wheel(CACHE, prep.DEFAULT_VERSION)
    except Exception as exc:  # no registry reachable
        pytest.skip(f'cannot fetch the deepforest wheel: {exc}')
    out = str(tmp_path_factory.mktemp('deepforest_small'))
    data_dir = prep.extract_data(wheel, CACHE)
    stats = prep.convert(data_dir, out, tile=400, min_visible=0.5, max_tiles=(4, 2))
    assert stats['train'][0] == 4 and stats['val'][0] == 2 and stats['val'][1] > 0
    return out


def data_options(root):
    root = root.rstrip('/') + '/'
    return [f'train_dataloader.dataset.data_root={root}', f'val_dataloader.dataset.data_root={root}',
            f'test_dataloader.dataset.data_root={root}', f'val_evaluator.ann_file={root}annotations/val.json',
            f'test_evaluator.ann_file={root}annotations/val.json']


def test_prepare_split_is_by_source_image(deepforest_small):
    train = json.load(open(osp.join(deepforest_small, 'annotations', 'train.json')))
    val = json.load(open(osp.join(deepforest_small, 'annotations', 'val.json')))
    assert {im['source'] for im in train['images']}.isdisjoint({im['source'] for im in val['images']})
    assert train['categories'] == [dict(id=1, name='Tree', supercategory='plant')]
    for ann in train['annotations']:
        x, y, w, h = ann['bbox']
        assert w >= 2 and h >= 2 and x >= 0 and y >= 0 and x + w <= 400 and y + h <= 400


def independent_coco_map(ann_file, results_pkl):
    """Box mAP of the dumped predictions by pycocotools directly (not through MMDetection's CocoMetric)."""
    import mmengine
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    gt = COCO(ann_file)
    cat_ids = sorted(gt.getCatIds())
    dets = []
    for sample in mmengine.load(results_pkl):
        pred = sample['pred_instances']
        for (x1, y1, x2, y2), score, label in zip(pred['bboxes'].tolist(), pred['scores'].tolist(),
                                                  pred['labels'].tolist()):
            dets.append(dict(image_id=sample['img_id'], category_id=cat_ids[label], bbox=[x1, y1, x2 - x1, y2 - y1],
                             score=score))
    assert dets, 'the trained model predicted no box at all'
    evaluation = COCOeval(gt, gt.loadRes(dets), 'bbox')
    evaluation.params.maxDets = [100, 300, 1000]  # CocoMetric's proposal_nums: AP50 etc. at 1000 boxes
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    return evaluation.stats  # AP, AP50, AP75, APs, APm, APl, then the ARs


def test_train_then_test_metrics_match_an_independent_evaluation(deepforest_small, tmp_path):
    """tools/train.py -> tools/test.py --out --json; the JSON is CocoMetric's numbers in %, and those are the
    numbers pycocotools gives for the dumped predictions. (Two epochs on four tiles are too few for a box AP
    threshold: the run's AP is 0, so the independent evaluation is the check.)"""
    test_tool, train_tool = load_tool('test'), load_tool('train')
    work = str(tmp_path / 'work')
    opts = data_options(deepforest_small) + ['train_cfg.max_epochs=2', 'train_cfg.val_interval=2',
                                             'train_dataloader.batch_size=2', 'experiment_name=e2e_train',
                                             'param_scheduler.0.end=2']
    train_tool.main(['configs/demo/fcos_tresnet_asl_deepforest.py', '--work-dir', work, '--cfg-options', *opts])
    ckpt = osp.join(work, 'epoch_2.pth')
    assert osp.exists(ckpt)
    metrics_file, results_file = str(tmp_path / 'metrics.json'), str(tmp_path / 'results.pkl')
    metrics = test_tool.main(['configs/demo/fcos_tresnet_asl_deepforest.py', ckpt, '--work-dir', work, '--json',
                              metrics_file, '--out', results_file, '--cfg-options', *data_options(deepforest_small),
                              'experiment_name=e2e_test'])
    stats = independent_coco_map(osp.join(deepforest_small, 'annotations', 'val.json'), results_file)
    box = json.load(open(metrics_file))
    for i, (name, key) in enumerate(test_tool.COCO_KEYS):
        # CocoMetric rounds to 3 decimals; pycocotools gives -1 for an area range without ground truth
        assert metrics[f'coco/{key}'] == pytest.approx(stats[i], abs=6e-4), key
        if stats[i] >= 0:
            assert box[name] == pytest.approx(100 * metrics[f'coco/{key}'], abs=1e-9), name
        else:
            assert box[name] is None, name


def test_test_py_table_and_percentages():
    test_tool = load_tool('test')
    raw = {'coco/bbox_mAP': 0.412, 'coco/bbox_mAP_50': 0.7, 'coco/bbox_mAP_75': 0.375, 'coco/bbox_mAP_s': -1.0,
           'coco/bbox_mAP_m': 0.25, 'coco/bbox_mAP_l': 0.0}
    box = test_tool.coco_box_metrics(raw)
    assert [box[k] for k in ('AP', 'AP50', 'AP75', 'APm', 'APl')] == pytest.approx([41.2, 70.0, 37.5, 25.0, 0.0])
    row = test_tool.format_table(box).splitlines()[-1]
    assert [c.strip() for c in row.strip('| ').split('|')] == ['41.2', '70.0', '37.5', 'n/a', '25.0', '0.0']
    assert box['APs'] is None and json.loads(json.dumps(box))['APs'] is None  # null in the JSON, not -100


def _mmdet_train_py():
    import mmdet
    path = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')
    if not osp.exists(path):
        pytest.skip('mmdet package has no .mim/tools/train.py')
    return path


SWAP_ON_DEEPFOREST = """
_base_ = '{base}'
data_root = '{root}/'
metainfo = dict(classes=('Tree', ))
model = dict(backbone=dict(init_cfg=None), bbox_head=dict(num_classes=1))
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations/train.json',
                 data_prefix=dict(img='images/train/'),
                 pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                           dict(type='Resize', scale=(320, 320), keep_ratio=True), dict(type='PackDetInputs')]))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations/val.json',
                 data_prefix=dict(img='images/val/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=1, val_interval=10)
"""


@pytest.mark.parametrize('tool,config', [
    ('mmdet', 'configs/demo/fcos_tresnet_asl_deepforest.py'),
    ('mmdet', 'configs/swap/fcos_r50-caffe_fpn_gn-head_1x_coco_asl.py'),
])
def test_train_py_runs_our_configs(deepforest_small, tmp_path, tool, config):
    """MMDetection's own tools/train.py (which imports nothing of ours: the configs' custom_imports do) trains one
    epoch of the demo config and of a swap config (the swap configs are built and trained in-process by
    tests/test_detection_configs.py); a swap config runs on 4 DeepForest tiles through a small child config."""
    if 'swap' in config:
        child = tmp_path / 'swap_on_deepforest.py'
        child.write_text(SWAP_ON_DEEPFOREST.format(base=osp.join(ROOT, config), root=deepforest_small))
        config, opts = str(child), []
    else:
        opts = ['--cfg-options', *data_options(deepforest_small), 'train_cfg.max_epochs=1',
                'train_cfg.val_interval=10']
    script = _mmdet_train_py() if tool == 'mmdet' else osp.join(ROOT, 'tools', 'train.py')
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run([sys.executable, script, config, '--work-dir', str(tmp_path / 'work'), *opts],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert glob.glob(osp.join(str(tmp_path / 'work'), 'epoch_1.pth'))

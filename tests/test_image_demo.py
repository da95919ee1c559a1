"""demo/image_demo.py on a real DeepForest image: the picture (ground truth beside predictions with
--ann-file) and the boxes as JSON, from the demo config and a small checkpoint made here (untrained head, so
the test takes seconds)."""
import importlib.util
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(ROOT, 'configs', 'demo', 'fcos_effnet-lite0_asl_deepforest.py')


def load_module(relpath):
    spec = importlib.util.spec_from_file_location(osp.basename(relpath)[:-3], osp.join(ROOT, relpath))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def deepforest_image(tmp_path_factory):
    """OSBS_029.png (400 x 400, 61 trees) from the deepforest wheel, with a one-image COCO file."""
    prep = load_module('tools/dataset_converters/prepare_deepforest.py')
    try:
        wheel = prep.fetch_wheel(osp.join(ROOT, 'data', 'cache'), prep.DEFAULT_VERSION)
    except Exception as exc:  # no registry reachable
        pytest.skip(f'cannot fetch the deepforest wheel: {exc}')
    data_dir = prep.extract_data(wheel, osp.join(ROOT, 'data', 'cache'))
    boxes = prep.read_voc(osp.join(data_dir, 'OSBS_029.xml'))
    ann = dict(images=[dict(id=1, file_name='OSBS_029.png', width=400, height=400)],
               categories=[dict(id=1, name='Tree')],
               annotations=[dict(id=i + 1, image_id=1, category_id=1, iscrowd=0,
                                 bbox=[b[0], b[1], b[2] - b[0], b[3] - b[1]]) for i, b in enumerate(boxes.tolist())])
    ann_file = str(tmp_path_factory.mktemp('ann') / 'osbs.json')
    json.dump(ann, open(ann_file, 'w'))
    return osp.join(data_dir, 'OSBS_029.png'), ann_file, len(boxes)


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    import mmdet_asl  # noqa: F401
    register_all_modules(init_default_scope=False)  # a module fixture's scope would outlive every test after it
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    # An untrained head scores every location at its prior (0.01), under score_thr; a zero bias gives
    # sigmoid(0) = 0.5, so that boxes come out and get drawn.
    torch.nn.init.zeros_(model.bbox_head.conv_cls.bias)
    path = str(tmp_path_factory.mktemp('ckpt') / 'detector.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=dict(classes=('Tree', )))), path)
    return path


def test_image_demo_writes_picture_and_boxes(deepforest_image, checkpoint, tmp_path):
    image, ann_file, num_trees = deepforest_image
    demo = load_module('demo/image_demo.py')
    out_file, boxes = demo.main([image, CONFIG, checkpoint, '--out-dir', str(tmp_path), '--score-thr', '0.0',
                                 '--ann-file', ann_file])
    saved = json.load(open(tmp_path / 'OSBS_029.json'))
    assert saved == boxes and len(boxes) > 0
    test_cfg = Config.fromfile(CONFIG).model.test_cfg
    assert len(boxes) <= test_cfg.max_per_img
    for b in boxes:
        x1, y1, x2, y2 = b['bbox']
        assert 0 <= x1 <= x2 <= 400 and 0 <= y1 <= y2 <= 400 and b['class'] == 'Tree' and b['label'] == 0
        assert b['score'] >= test_cfg.score_thr
    picture = cv2.imread(out_file)
    assert picture.shape == (400, 800, 3)  # ground truth | predictions
    raw = cv2.imread(image)
    changed = np.abs(picture[:, :400].astype(int) - raw.astype(int)).sum(-1) > 60
    assert changed.mean() > 0.01, 'no ground-truth boxes drawn'


def test_image_demo_without_ground_truth_and_bad_paths(deepforest_image, checkpoint, tmp_path):
    image, _, _ = deepforest_image
    demo = load_module('demo/image_demo.py')
    out_file, _ = demo.main([image, CONFIG, checkpoint, '--out-dir', str(tmp_path)])
    assert cv2.imread(out_file).shape == (400, 400, 3)
    with pytest.raises(FileNotFoundError, match='checkpoint'):
        demo.main([image, CONFIG, str(tmp_path / 'none.pth'), '--out-dir', str(tmp_path)])


def test_checkpoint_names_follow_the_config_epochs(tmp_path):
    """The docstring's example and the missing-checkpoint error name the checkpoint tools/train.py writes last
    for the config: epoch_<max_epochs>.pth (CheckpointHook interval = max_epochs)."""
    import re
    demo = load_module('demo/image_demo.py')
    cfg = Config.fromfile(CONFIG)
    last = f'epoch_{cfg.train_cfg.max_epochs}.pth'
    assert cfg.default_hooks.checkpoint.interval == cfg.train_cfg.max_epochs
    assert re.findall(r'epoch_\d+\.pth', demo.__doc__) == [last]
    image = tmp_path / 'a.png'
    image.write_bytes(b'')
    with pytest.raises(FileNotFoundError) as info:
        demo.main([str(image), CONFIG, str(tmp_path / 'none.pth')])
    assert osp.join('work_dirs', 'fcos_effnet-lite0_asl_deepforest', last) in str(info.value)
    assert f'tools/train.py {CONFIG}' in str(info.value)

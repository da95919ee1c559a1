"""Every detection config of the plugin (configs/fcos/, configs/demo/ and the FocalLoss swaps of configs/swap/)
parses, builds its model without downloading anything, runs one training iteration and one ``predict`` on a tiny
CPU batch. (Every configs/swap/ config, the other families included, is trained and run at a tiny size by
tests/test_support_matrix.py.)"""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules

import mmdet_asl  # noqa: F401

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
FOCAL_SWAPS = ('atss_', 'fcos_', 'fovea_', 'fsaf_', 'retinanet_')
# The flagship's focal twin is the ASL config but for loss_cls (test_asl_twin_changes_only_loss_cls): building
# TResNet-M once is enough.
CONFIGS = sorted([osp.join(ROOT, 'configs', 'fcos', 'fcos_tresnetm_asl.py')]
                 + [p for p in glob.glob(osp.join(ROOT, 'configs', 'swap', '*.py'))
                    if osp.basename(p).startswith(FOCAL_SWAPS)]
                 + glob.glob(osp.join(ROOT, 'configs', 'demo', '*.py')))
IDS = [osp.relpath(c, osp.join(ROOT, 'configs')) for c in CONFIGS]


def offline(cfg):
    """Drop every pretrained-weight reference (nothing may be downloaded in tests)."""
    model = cfg.model
    model.pop('pretrained', None)
    if 'backbone' in model:
        model.backbone.init_cfg = None
    return model


def tiny_batch(num_classes, size=(96, 128), n=2):
    torch.manual_seed(0)
    inputs, samples = [], []
    h, w = size
    for i in range(n):
        inputs.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8))
        s = DetDataSample(metainfo=dict(img_shape=size, ori_shape=size, pad_shape=size, scale_factor=(1.0, 1.0),
                                        batch_input_shape=size, img_id=i))
        s.gt_instances = InstanceData(
            bboxes=torch.tensor([[10., 12., 60., 70.], [50., 20., 120., 90.]]),
            labels=torch.tensor([0, min(1, num_classes - 1)]))
        s.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def num_classes_of(model):
    return model.bbox_head.num_classes


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_builds_trains_and_predicts(path):
    register_all_modules()
    cfg = Config.fromfile(path)
    assert cfg.custom_imports == dict(imports=['mmdet_asl'], allow_failed_imports=False)
    loss_cls = cfg.model.bbox_head.loss_cls
    assert loss_cls.use_sigmoid is True
    if 'asl' in osp.basename(path):
        assert loss_cls.type == 'AsymmetricLoss'
        assert (loss_cls.gamma_pos, loss_cls.gamma_neg) == (1.0, 2.0)
    model = MODELS.build(offline(cfg))
    model.init_weights()
    if 'asl' in osp.basename(path):
        assert type(model.bbox_head.loss_cls).__name__ == 'AsymmetricLoss'
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train()
    data = tiny_batch(num_classes_of(model))
    losses = model.train_step(data, optim)  # one SGD step through the data preprocessor
    assert 'loss_cls' in losses and torch.isfinite(losses['loss_cls']).all()
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in losses.values())
    model.eval()
    with torch.no_grad():
        results = model.test_step(tiny_batch(num_classes_of(model)))
    assert len(results) == 2 and hasattr(results[0], 'pred_instances')
    assert results[0].pred_instances.bboxes.shape[-1] == 4


def _model_without_loss_cls(cfg):
    model = cfg.model.to_dict()
    model['bbox_head'].pop('loss_cls')
    return model


@pytest.mark.parametrize('focal,asl,base_loss', [
    ('fcos/fcos_tresnetm_focal.py', 'fcos/fcos_tresnetm_asl.py', 'FocalLoss'),
    ('demo/fcos_tresnet_focal_deepforest.py', 'demo/fcos_tresnet_asl_deepforest.py', 'FocalLoss'),
    ('demo/fcos_effnet-lite0_focal_deepforest.py', 'demo/fcos_effnet-lite0_asl_deepforest.py', 'FocalLoss'),
    ('demo/gfl_effnet-lite0_qfl_deepforest.py', 'demo/gfl_effnet-lite0_aqfl_deepforest.py', 'QualityFocalLoss'),
    ('demo/fcos_effnet-lite0_focal_fashion-longtail.py', 'demo/fcos_effnet-lite0_efl_fashion-longtail.py',
     'FocalLoss'),
    ('demo/fcos_effnet-lite0_focal_fashion-longtail.py', 'demo/fcos_effnet-lite0_asl_fashion-longtail.py',
     'FocalLoss'),
    ('demo/fcos_effnet-lite0_focal_fashion-longtail.py',
     'demo/fcos_effnet-lite0_asl-adaptive-perclass_fashion-longtail.py', 'FocalLoss')])
def test_asl_twin_changes_only_loss_cls(focal, asl, base_loss):
    a = Config.fromfile(osp.join(ROOT, 'configs', focal))
    b = Config.fromfile(osp.join(ROOT, 'configs', asl))
    assert _model_without_loss_cls(a) == _model_without_loss_cls(b)
    for key in ('train_dataloader', 'val_dataloader', 'optim_wrapper', 'param_scheduler', 'train_cfg'):
        assert a[key] == b[key], key
    assert a.model.bbox_head.loss_cls.type == base_loss


def test_flagship_schedule_matches_the_paper():
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'fcos_tresnetm_asl.py'))  # the short alias of configs/fcos/
    assert cfg.train_cfg.max_epochs == 70
    assert cfg.train_dataloader.batch_size * 8 == 48 == cfg.auto_scale_lr.base_batch_size
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == ('SGD', 0.01, 0.9, 0.0001)
    step = [s for s in cfg.param_scheduler if s.type == 'MultiStepLR'][0]
    assert step.milestones == [40, 60] and step.gamma == 0.1
    assert cfg.model.backbone.type == 'TResNet' and cfg.model.backbone.arch == 'tresnet_m'
    pre = cfg.model.data_preprocessor
    assert pre.mean == [0.0, 0.0, 0.0] and pre.std == [255.0, 255.0, 255.0] and pre.bgr_to_rgb
    assert cfg.val_evaluator.type == 'CocoMetric' and cfg.val_evaluator.metric == 'bbox'

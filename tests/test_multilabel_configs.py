"""Every multi-label config parses and builds; the data-less ones fail clearly; the demo trains one iteration
and evaluates on a few canvases; Open Images' partial-label weights reach the loss."""
import copy
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope, init_default_scope

import mmdet_asl.datasets  # noqa: F401
import mmdet_asl.evaluation  # noqa: F401
import mmdet_asl.models.heads  # noqa: F401
from mmpretrain.registry import DATASETS, MODELS

from test_multilabel_datasets import _openimages, fashion_source, mfc

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'multilabel', '*.py')))
DEMO = osp.join(ROOT, 'configs', 'multilabel', 'resnet18-w16_asl_1xb64_fashion-canvas.py')
PAPER_LOSSES = {  # (gamma_pos, gamma_neg, clip)
    'asl': (0.0, 4.0, 0.05), 'ce': (0.0, 0.0, 0.0), 'focal': (2.0, 2.0, 0.0)}


def _loss_kind(path):
    return next(k for k in PAPER_LOSSES if f'_{k}_' in osp.basename(path))


def test_config_set_is_complete():
    names = {osp.basename(p) for p in CONFIGS}
    for stem in ('tresnet-l_{}_8xb16_coco14-448px', 'resnet101_{}_8xb16_coco14-448px', 'tresnet-l_{}_8xb16_voc07-448px',
                 'tresnet-l_{}_8xb16_nus-wide-448px', 'tresnet-l_{}_8xb16_openimages-448px',
                 'resnet18-w16_{}_1xb64_fashion-canvas'):
        for loss in PAPER_LOSSES:
            assert stem.format(loss) + '.py' in names


def _without_loss(cfg):
    d = copy.deepcopy(cfg.to_dict())
    d['model']['head'].pop('loss')
    return d


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_parses_and_twins_change_only_the_loss(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmpretrain'
    loss = cfg.model.head.loss
    assert loss.type == 'mmdet.AsymmetricLoss'
    kind = _loss_kind(path)
    expected = PAPER_LOSSES[kind]
    if 'openimages' in path and kind == 'asl':
        expected = (0.0, 7.0, 0.05)  # appendix G
    assert (loss.gamma_pos, loss.gamma_neg, loss.clip) == expected
    assert cfg.val_evaluator.type == 'ASLMultiLabelMetric'
    assert cfg.data_preprocessor.std == [255.0] * 3 and cfg.data_preprocessor.mean == [0.0] * 3
    assert cfg.data_preprocessor.num_classes == cfg.model.head.num_classes
    if kind != 'asl':
        twin = Config.fromfile(path.replace(f'_{kind}_', '_asl_'))
        assert _without_loss(cfg) == _without_loss(twin)


_BUILT = {}


@pytest.mark.parametrize('path', [p for p in CONFIGS if '_asl_' in p], ids=osp.basename)
def test_config_model_builds_and_runs(path):
    cfg = Config.fromfile(path)
    init_default_scope('mmpretrain')
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.data_preprocessor = cfg.data_preprocessor
    model = MODELS.build(model_cfg)
    model.init_weights()
    assert type(model.head.loss_module).__module__ == 'mmdet_asl.models.losses.asymmetric_loss'
    size = 64 if 'fashion' in path else 96  # small inputs keep the test fast; the nets are size-agnostic
    with torch.no_grad():
        out = model(torch.rand(2, 3, size, size), mode='tensor')
    assert out.shape == (2, cfg.model.head.num_classes)


@pytest.mark.parametrize('path', [p for p in CONFIGS if '_asl_' in p and 'fashion' not in p], ids=osp.basename)
def test_datasets_fail_clearly_without_data(path, tmp_path):
    cfg = Config.fromfile(path)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        for loader in ('train_dataloader', 'val_dataloader'):
            ds_cfg = copy.deepcopy(cfg[loader].dataset)
            ds_cfg.data_root = str(tmp_path / 'absent')
            with pytest.raises(FileNotFoundError, match='Expected layout'):
                DATASETS.build(ds_cfg)


def test_demo_trains_one_iteration_and_evaluates(tmp_path):
    from mmengine.runner import Runner
    canvases = tmp_path / 'canvas'
    assert mfc.main(['--src', fashion_source(tmp_path), '--out', str(canvases), '--num-train', '8',
                     '--num-test', '6']) == 0
    cfg = Config.fromfile(DEMO)
    cfg.work_dir = str(tmp_path / 'work')
    for loader, bs in (('train_dataloader', 8), ('val_dataloader', 6)):
        cfg[loader].dataset.data_root = str(canvases)
        cfg[loader].batch_size = bs
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg.max_epochs = 1
    cfg.train_cfg.val_interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    cfg.default_hooks.logger.interval = 1
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    before = {k: v.clone() for k, v in runner.model.state_dict().items()}
    runner.train()  # 1 iteration, then one validation
    assert runner.iter == 1
    changed = [k for k, v in runner.model.state_dict().items() if v.dtype.is_floating_point and
               not torch.equal(v, before[k])]
    assert any(k.startswith('backbone.') for k in changed) and 'head.fc.weight' in changed
    metrics = runner.val_loop.run()
    names = ('mAP', 'CP', 'CR', 'CF1', 'OP', 'OR', 'OF1')
    expected = {f'multi-label/{k}' for k in names} | {f'multi-label/{k}_top3' for k in names[1:]}
    assert expected <= set(metrics)
    assert all(np.isfinite(metrics[k]) and 0 <= metrics[k] <= 100 for k in expected)


def _oi_batch(tmp_path, untagged_weight):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'multilabel', 'tresnet-l_asl_8xb16_openimages-448px.py'))
    root = _openimages(tmp_path)
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    ds_cfg.update(data_root=str(root), ann_file='annotations/train.csv', untagged_weight=untagged_weight)
    # the config's own pipeline (PackInputs must carry gt_label_weight), on smaller images for speed
    for t in ds_cfg.pipeline:
        if t.type == 'Resize':
            t.scale = (32, 32)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        ds = DATASETS.build(ds_cfg)
        pre_cfg = dict(type='ClsDataPreprocessor', **{**cfg.data_preprocessor, 'num_classes': 4})
        preprocessor = MODELS.build(pre_cfg)
        head_cfg = copy.deepcopy(cfg.model.head)
        head_cfg.update(num_classes=4, in_channels=8)
        head = MODELS.build(head_cfg)
    batch = preprocessor(pseudo_collate([ds[0], ds[1]]), training=True)
    return head, batch['data_samples']


def test_partial_label_weights_reach_the_loss(tmp_path):
    head, samples = _oi_batch(tmp_path, untagged_weight=0.25)
    seen = {}
    forward = head.loss_module.forward

    def spy(pred, target, weight=None, **kw):
        seen['weight'], seen['target'] = weight, target
        return forward(pred, target, weight=weight, **kw)

    head.loss_module.forward = spy
    torch.manual_seed(0)
    feats = torch.randn(2, 8)
    loss_w = head.loss((feats, ), samples)['loss']
    expected = torch.tensor([[1, 1, 0.25, 0.25], [0.25, 0.25, 0.25, 1]])  # img1: a=1, b=0; img2: d=1
    torch.testing.assert_close(seen['weight'], expected)
    torch.testing.assert_close(seen['target'], torch.tensor([[1., 0, 0, 0], [0, 0, 0, 1]]))
    # the weight changes the loss: the same batch with untagged weight 1 gives the unweighted loss
    head1, samples1 = _oi_batch(tmp_path / 'w1', untagged_weight=1.0)
    head1.load_state_dict(head.state_dict())
    loss_1 = head1.loss((feats, ), samples1)['loss']
    manual = head.loss_module(head.fc(feats), seen['target'], weight=expected, avg_factor=2)
    torch.testing.assert_close(loss_w, manual)
    assert not torch.allclose(loss_w, loss_1)
    unweighted = head.loss_module(head.fc(feats), seen['target'], avg_factor=2)
    torch.testing.assert_close(loss_1, unweighted)


def test_weighted_head_without_weights_is_the_plain_head():
    init_default_scope('mmpretrain')
    from mmpretrain.structures import DataSample
    loss = dict(type='mmdet.AsymmetricLoss', gamma_pos=0.0, gamma_neg=4.0, clip=0.05)
    plain = MODELS.build(dict(type='MultiLabelLinearClsHead', num_classes=3, in_channels=4, loss=loss))
    weighted = MODELS.build(dict(type='WeightedMultiLabelLinearClsHead', num_classes=3, in_channels=4, loss=loss))
    weighted.load_state_dict(plain.state_dict())
    samples = [DataSample().set_gt_label([0, 2]), DataSample().set_gt_label([1])]
    feats = (torch.randn(2, 4), )
    torch.testing.assert_close(weighted.loss(feats, samples)['loss'], plain.loss(feats, samples)['loss'])
    samples[0].set_field(np.array([1.0, 0.0, 1.0], np.float32), 'gt_label_weight')
    bad = [DataSample().set_gt_label([0])]
    bad[0].set_field(np.ones(5, np.float32), 'gt_label_weight')
    with pytest.raises(ValueError, match='gt_label_weight has 5 values'):
        weighted.loss((torch.randn(1, 4), ), bad)
    assert torch.isfinite(weighted.loss(feats, samples)['loss'])

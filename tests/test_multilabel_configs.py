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

from mmpretrain.registry import DATASETS, MODELS

import mmdet_asl.datasets  # noqa: F401
import mmdet_asl.evaluation  # noqa: F401
import mmdet_asl.models.heads  # noqa: F401
from test_multilabel_datasets import _openimages, fashion_source, mfc

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'multilabel', '*.py')))
DEMO = osp.join(ROOT, 'configs', 'multilabel', 'resnet18-w16_asl_1xb64_fashion-canvas.py')
PAPER_LOSSES = {  # (gamma_pos, gamma_neg, clip)
    'asl': (0.0, 4.0, 0.05), 'ce': (0.0, 0.0, 0.0), 'focal': (2.0, 2.0, 0.0)}


def _loss_kind(path):
    """'asl', 'ce' or 'focal' from the name's loss field (``<model>_<loss>[-variant]_<schedule>_...``)."""
    return osp.basename(path).split('_')[1].split('-')[0]


def test_config_set_is_complete():
    names = {osp.basename(p) for p in CONFIGS}
    for stem in ('tresnet-l_{}_8xb16_coco14-448px', 'resnet101_{}_8xb16_coco14-448px', 'tresnet-l_{}_8xb16_voc07-448px',
                 'tresnet-l_{}_8xb16_nus-wide-448px', 'tresnet-l_{}_8xb16_openimages-448px',
                 'tresnet-l_{}_8xb16_openimages-224px',
                 'resnet18-w16_{}_1xb64_fashion-canvas'):
        for loss in PAPER_LOSSES:
            assert stem.format(loss) + '.py' in names


def _without_loss(cfg):
    """The config without its loss (and without load_from: a twin's stage 2 starts from its own stage 1)."""
    d = copy.deepcopy(cfg.to_dict())
    d['model']['head'].pop('loss')
    d.pop('load_from', None)
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
    if 'openimages' in path and kind == 'focal':
        expected = (4.0, 4.0, 0.0)  # appendix G: the focal baseline uses gamma = 4
    assert (loss.gamma_pos, loss.gamma_neg, loss.clip) == expected
    assert cfg.val_evaluator.type == 'ASLMultiLabelMetric'
    # [0, 1] as in the official recipe; the ImageNet EfficientNet-Lite weights expect TF-Lite's [-1, 1]
    scale = (127.5, 127.5) if osp.basename(path).startswith('effnet-lite') else (0.0, 255.0)
    assert cfg.data_preprocessor.mean == [scale[0]] * 3 and cfg.data_preprocessor.std == [scale[1]] * 3
    assert cfg.data_preprocessor.num_classes == cfg.model.head.num_classes
    if kind != 'asl':
        twin = Config.fromfile(path.replace(f'_{kind}_', '_asl_'))
        assert _without_loss(cfg) == _without_loss(twin)
        if cfg.get('load_from'):
            assert f'_{kind}_' in cfg.load_from and cfg.load_from != twin.load_from


_BUILT = {}


@pytest.mark.parametrize('path', [p for p in CONFIGS if _loss_kind(p) == 'asl'], ids=osp.basename)
def test_config_model_builds_and_runs(path):
    cfg = Config.fromfile(path)
    init_default_scope('mmpretrain')
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.data_preprocessor = cfg.data_preprocessor
    model_cfg.backbone.pop('init_cfg', None)  # the COCO-initialised VOC config points at a local checkpoint
    model = MODELS.build(model_cfg)
    model.init_weights()
    assert type(model.head.loss_module).__module__ == 'mmdet_asl.models.losses.asymmetric_loss'
    size = 64 if 'fashion' in path else 96  # small inputs keep the test fast; the nets are size-agnostic
    with torch.no_grad():
        out = model(torch.rand(2, 3, size, size), mode='tensor')
    assert out.shape == (2, cfg.model.head.num_classes)


@pytest.mark.parametrize('path', [p for p in CONFIGS if _loss_kind(p) == 'asl' and 'fashion' not in p],
                         ids=osp.basename)
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


# --- the paper's configs train one step (tiny inputs and data, the configs' own model, optimiser, schedule, hooks)

def _tiny_loader(cfg, loader, dataset, size):
    """The config's loader on ``dataset`` (2 images) with its own pipeline, resized to ``size``."""
    pipeline = copy.deepcopy(cfg[loader].dataset.pipeline)
    for t in pipeline:
        if t['type'] == 'Resize':
            t['scale'] = (size, size)
    dataset = dict(dataset, pipeline=pipeline)
    return dict(batch_size=2, num_workers=0, persistent_workers=False,
                sampler=dict(type='DefaultSampler', shuffle=False), dataset=dataset)


def _one_step_runner(path, work_dir, dataset, num_classes, size=32, **overrides):
    from mmengine.runner import Runner
    cfg = Config.fromfile(path)
    cfg.work_dir = str(work_dir)
    cfg.train_dataloader = _tiny_loader(cfg, 'train_dataloader', dataset, size)
    cfg.model.head.num_classes = num_classes
    cfg.data_preprocessor.num_classes = num_classes
    cfg.train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=100)  # 2 images, batch 2: one iteration
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator', 'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg.default_hooks.logger.interval = 1
    cfg.log_level = 'WARNING'
    cfg.merge_from_dict(overrides)
    return Runner.from_cfg(cfg)


def _canvases(tmp_path):
    out = tmp_path / 'canvas'
    if not out.exists():
        assert mfc.main(['--src', fashion_source(tmp_path), '--out', str(out), '--num-train', '2',
                         '--num-test', '2']) == 0
    return dict(type='CocoMultiLabel', data_root=str(out), ann_file='annotations/instances_train.json',
                data_prefix='train')


def _trained(runner):
    before = {k: v.clone() for k, v in runner.model.state_dict().items()}
    runner.train()
    assert runner.iter == 1
    after = runner.model.state_dict()
    assert not torch.equal(after['head.fc.weight'], before['head.fc.weight'])
    return after


def _config(name):
    return osp.join(ROOT, 'configs', 'multilabel', name)


def test_openimages_two_stages_and_coco_init_train_one_step(tmp_path):
    oi = dict(type='OpenImagesPartialLabel', data_root=str(_openimages(tmp_path)), ann_file='annotations/train.csv',
              untagged_weight=0.1)
    stage1 = _one_step_runner(_config('tresnet-l_asl_8xb16_openimages-224px.py'), tmp_path / 's1', oi, 4)
    assert Config.fromfile(_config('tresnet-l_asl_8xb16_openimages-224px.py')).train_cfg.max_epochs == 30
    _trained(stage1)
    full = torch.load(str(tmp_path / 's1' / 'epoch_1.pth'), map_location='cpu', weights_only=False)
    saved = full['state_dict']
    # the weights and meta of stage 1's checkpoint (what a published checkpoint keeps)
    ckpt = str(tmp_path / 's1' / 'weights.pth')
    torch.save(dict(meta=full['meta'], state_dict=saved), ckpt)
    stage2_path = _config('tresnet-l_asl_8xb16_openimages-448px.py')
    assert Config.fromfile(stage2_path).train_cfg.max_epochs == 5
    assert Config.fromfile(stage2_path).load_from.endswith('tresnet-l_asl_8xb16_openimages-224px/epoch_30.pth')
    stage2 = _one_step_runner(stage2_path, tmp_path / 's2', oi, 4, load_from=ckpt)
    stage2.call_hook('before_run')  # EMAHook builds its averaged copy here, before the checkpoint loads
    stage2.load_or_resume()
    for k, v in stage2.model.state_dict().items():
        torch.testing.assert_close(v, saved[k], msg=k)  # stage 2 starts from stage 1's (EMA) weights
    _trained(stage2)
    # VOC from a classifier checkpoint: only the backbone is loaded (the head has another class count)
    voc = _one_step_runner(_config('tresnet-l_asl_8xb16_voc07-448px_coco-init.py'), tmp_path / 'voc',
                           _canvases(tmp_path), 10, size=64)
    voc.cfg.model.backbone.init_cfg.checkpoint = ckpt
    voc.model.backbone.init_cfg['checkpoint'] = ckpt
    voc.model.init_weights()
    model = voc.model.state_dict()
    backbone = [k for k in saved if k.startswith('backbone.')]
    assert backbone and all(torch.equal(model[k], saved[k]) for k in backbone)
    assert model['head.fc.weight'].shape == (10, 2432)


@pytest.mark.parametrize('name', ['tresnet-xl_asl_8xb16_coco14-640px.py', 'resnet101_asl_8xb16_voc07-448px.py',
                                  'resnet101_asl_8xb16_nus-wide-448px.py'])
def test_paper_configs_train_one_step(name, tmp_path):
    runner = _one_step_runner(_config(name), tmp_path / 'work', _canvases(tmp_path), 10, size=64)
    _trained(runner)


def test_adaptive_config_moves_gamma_neg(tmp_path):
    runner = _one_step_runner(_config('tresnet-l_asl-adaptive_8xb16_coco14-448px.py'), tmp_path / 'work',
                              _canvases(tmp_path), 10, size=64)
    assert runner.model.head.loss_module.gamma_neg == 4.0
    _trained(runner)
    assert runner.model.head.loss_module.gamma_neg != 4.0  # Eq. 11 moved it after one iteration


def test_onecycle_checkpoint_loads_whole(tmp_path):
    """The paper configs' OneCycleLR pickles its annealing function into checkpoints; they must still load."""
    from mmdet_asl.compat import load_checkpoint_safely
    runner = _one_step_runner(DEMO, tmp_path / 'work', _canvases(tmp_path), 10, size=64)
    runner.train()
    load_checkpoint_safely(str(tmp_path / 'work' / 'epoch_1.pth'))

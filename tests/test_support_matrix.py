"""Which MMDetection 3.3 detector families take the ASL swap, checked on the real configs.

``SUPPORT`` is the support table of README.md (``python tools/misc/support_matrix.py`` prints it). For each
family the test loads MMDetection's own config, applies the documented swap (``swap_to_asl``), replaces the
backbone by a ResNet-18 without weights (or keeps the config's tiny CSP backbone), and either trains one step on
two 64 x 64 images, checks that every swapped loss module (and matching cost) was called, and predicts
('works'), or checks that the swap is refused with a message that names what to keep ('refused').

Also: unit tests of ``asymmetric_loss_cfg`` and ``swap_to_asl``, and the swap configs of ``configs/swap/`` equal
the helper's output on their MMDetection base.
"""
import copy
import glob
import os.path as osp
import re
import sys
import types

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmengine.structures import InstanceData

import mmdet
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules

import mmdet_asl  # noqa: F401  (registers the losses)
from mmdet_asl.utils.configs import swap_to_asl

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MMDET_CONFIGS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs')
# The documented swap, that of configs/swap/: the paper's detection setting (gamma+ 1, gamma- 2, m 0), no alpha.
ASL = dict(gamma_pos=1.0, gamma_neg=2.0, clip=0.0, alpha=None)
ASL_TYPES = ('AsymmetricLoss', 'AsymmetricQualityFocalLoss', 'AsymmetricVarifocalLoss')

# family: MMDetection config, its classification loss, what to use, the swap's extra arguments, the outcome and,
# for a refusal, a phrase of its message.
SUPPORT = {
    'FCOS': dict(config='fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py', loss='`FocalLoss`',
                 use='`AsymmetricLoss`', outcome='works'),
    'ATSS': dict(config='atss/atss_r50_fpn_1x_coco.py', loss='`FocalLoss`', use='`AsymmetricLoss`',
                 outcome='works'),
    'RetinaNet': dict(config='retinanet/retinanet_r50_fpn_1x_coco.py', loss='`FocalLoss`',
                      use='`AsymmetricLoss`', outcome='works'),
    'FSAF': dict(config='fsaf/fsaf_r50_fpn_1x_coco.py', loss="`FocalLoss` (`reduction='none'`)",
                 use="`AsymmetricLoss` (`reduction='none'` kept)", outcome='works'),
    'FoveaBox': dict(config='foveabox/fovea_r50_fpn_4xb4-1x_coco.py', loss='`FocalLoss`',
                     use='`AsymmetricLoss`', outcome='works'),
    'PAA': dict(config='paa/paa_r50_fpn_1x_coco.py', loss='`FocalLoss`', use='`AsymmetricLoss`',
                outcome='works'),
    'GFL': dict(config='gfl/gfl_r50_fpn_1x_coco.py', loss='`QualityFocalLoss`',
                use='`AsymmetricQualityFocalLoss`', outcome='works'),
    'RTMDet': dict(config='rtmdet/rtmdet_tiny_8xb32-300e_coco.py', loss='`QualityFocalLoss`',
                   use='`AsymmetricQualityFocalLoss`', outcome='works'),
    'TOOD': dict(config='tood/tood_r50_fpn_1x_coco.py',
                 loss='`FocalLoss` (first epochs, on probabilities), then `QualityFocalLoss`',
                 use='`AsymmetricQualityFocalLoss` for both',
                 outcome='works'),
    'VFNet': dict(config='vfnet/vfnet_r50_fpn_1x_coco.py', loss='`VarifocalLoss`',
                  use='`AsymmetricVarifocalLoss` (no `gamma_pos`, keeps `alpha`)',
                  swap=dict(gamma_neg=2.0, clip=0.0),
                  outcome='works'),
    'YOLOX': dict(config='yolox/yolox_s_8xb8-300e_coco.py', loss="sigmoid `CrossEntropyLoss` (`reduction='sum'`)",
                  use="`AsymmetricLoss` (`reduction='sum'` kept)", outcome='works'),
    'CenterNet': dict(config='centernet/centernet_r18_8xb16-crop512-140e_coco.py',
                      loss='`GaussianFocalLoss` (heatmap)', use='keep `GaussianFocalLoss`', outcome='refused',
                      message='keep GaussianFocalLoss'),
    'DETR': dict(config='detr/detr_r50_8xb2-150e_coco.py', loss='softmax `CrossEntropyLoss`',
                 use='keep `CrossEntropyLoss`, or a sigmoid DETR below', outcome='refused',
                 message='keep CrossEntropyLoss'),
    'Deformable DETR': dict(config='deformable_detr/deformable-detr_r50_16xb2-50e_coco.py',
                            loss='`FocalLoss`, matcher `FocalLossCost`',
                            use='`AsymmetricLoss`, `AsymmetricFocalLossCost`', outcome='works'),
    'Conditional DETR': dict(config='conditional_detr/conditional-detr_r50_8xb2-50e_coco.py',
                             loss='`FocalLoss`, matcher `FocalLossCost`',
                             use='`AsymmetricLoss`, `AsymmetricFocalLossCost`', outcome='works'),
    'DAB-DETR': dict(config='dab_detr/dab-detr_r50_8xb2-50e_coco.py', loss='`FocalLoss`, matcher `FocalLossCost`',
                     use='`AsymmetricLoss`, `AsymmetricFocalLossCost`', outcome='works'),
    'DINO': dict(config='dino/dino-4scale_r50_8xb2-12e_coco.py', loss='`FocalLoss`, matcher `FocalLossCost`',
                 use='`AsymmetricLoss`, `AsymmetricFocalLossCost`', outcome='works'),
    'Faster R-CNN (RPN)': dict(config='faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
                               loss='sigmoid `CrossEntropyLoss`', use="`AsymmetricLoss` (`only=['rpn_head']`)",
                               swap=dict(ASL, only=['rpn_head']), outcome='works'),
    'Faster R-CNN (RoI)': dict(config='faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
                               loss='softmax `CrossEntropyLoss`', use='keep `CrossEntropyLoss`', outcome='refused',
                               message='keep CrossEntropyLoss'),
    'Cascade R-CNN (RoI)': dict(config='cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py',
                                loss='softmax `CrossEntropyLoss` (3 stages)', use='keep `CrossEntropyLoss`',
                                outcome='refused', message='keep CrossEntropyLoss'),
}

TABLE_HEADER = ('| family | loss in MMDetection | what to use | outcome |', '|---|---|---|---|')


def support_table() -> str:
    """README's support table, one row per ``SUPPORT`` entry."""
    rows = [f'| {family} | {row["loss"]} | {row["use"]} | {row["outcome"]} |' for family, row in SUPPORT.items()]
    return '\n'.join(TABLE_HEADER + tuple(rows))


def mmdet_config(name: str) -> Config:
    return Config.fromfile(osp.join(MMDET_CONFIGS, name))


# ---------------------------------------------------------------------------------------------------------------
# The tiny models


def _replace_sync_bn(node):
    """SyncBN needs a process group: plain BN on one CPU process."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'norm_cfg' and isinstance(value, dict) and value.get('type') == 'SyncBN':
                value['type'] = 'BN'
            else:
                _replace_sync_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _replace_sync_bn(value)


def _fewer_classes(node, num_classes: int = 2):
    """Two classes instead of COCO's 80 (RPN's one stays): smaller classifiers, faster NMS."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'num_classes' and isinstance(value, int) and value > num_classes:
                node[key] = num_classes
            else:
                _fewer_classes(value, num_classes)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _fewer_classes(value, num_classes)


def tiny(model: dict) -> dict:
    """``model`` with a ResNet-18 (no weights) for a ResNet backbone, the neck's input channels to match, no
    pretrained weights and no batch augmentation (YOLOX's random resize)."""
    model = copy.deepcopy(model)
    model.pop('pretrained', None)
    backbone = model['backbone']
    backbone['init_cfg'] = None
    if backbone['type'] == 'ResNet':
        out_indices = tuple(backbone.get('out_indices', (0, 1, 2, 3)))
        backbone.update(depth=18)
        neck = model.get('neck')
        if neck is not None and neck['type'] in ('FPN', 'ChannelMapper'):
            neck['in_channels'] = [64 * 2**i for i in out_indices]
    model['data_preprocessor']['batch_augments'] = None
    _replace_sync_bn(model)
    _fewer_classes(model)
    if 'num_queries' in model:  # DETR family: fewer queries (DINO's must not exceed the 85 encoder tokens), layers
        model['num_queries'] = 20
        model['encoder']['num_layers'] = 1
        model['decoder']['num_layers'] = 2
        model['test_cfg']['max_per_img'] = 10  # top-k over queries x classes
        if model.get('dn_cfg'):
            model['dn_cfg']['group_cfg']['num_dn_queries'] = 10
    return model


def tiny_batch(size: int = 64, n: int = 2):
    """Two ``size`` x ``size`` images with two boxes each (classes 0 and 1)."""
    torch.manual_seed(0)
    inputs, samples = [], []
    for i in range(n):
        inputs.append(torch.randint(0, 256, (3, size, size), dtype=torch.uint8))
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size),
                                             scale_factor=(1.0, 1.0), batch_input_shape=(size, size), img_id=i))
        sample.gt_instances = InstanceData(bboxes=torch.tensor([[4., 6., 30., 40.], [24., 10., 62., 56.]]),
                                           labels=torch.tensor([0, 1]))
        sample.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


class _TwoClusters:
    """Stand-in for ``sklearn.mixture.GaussianMixture`` (PAA's optional dependency, not installed here): splits
    the positive-candidate losses at their mean, low cluster = 0. PAA's ASL call happens before it."""

    def __init__(self, *args, **kwargs):
        self.threshold = 0.0

    def fit(self, x):
        self.threshold = float(np.mean(x))
        return self

    def predict(self, x):
        return (x.ravel() > self.threshold).astype(np.int64)

    def score_samples(self, x):
        return -np.abs(x.ravel() - self.threshold)


def _loss_paths(changes):
    return [c.split(':')[0] for c in changes if 'Cost' not in c]


def _module_at(model, path: str):
    node = model
    for part in path.replace('[', '.').replace(']', '').split('.'):
        node = node[int(part)] if part.isdigit() else getattr(node, part)
    return node


@pytest.mark.parametrize('family', list(SUPPORT))
def test_support_matrix(family, monkeypatch):
    register_all_modules()  # mmdet's default scope (the conftest resets it after each test)
    row = SUPPORT[family]
    cfg = mmdet_config(row['config'])
    if row['outcome'] == 'refused':
        with pytest.raises(ValueError, match=row['message']):
            swap_to_asl(cfg.model, **row.get('swap', ASL))
        return
    assert row['outcome'] == 'works', row
    swapped, changes = swap_to_asl(cfg.model, **row.get('swap', ASL))
    model = MODELS.build(tiny(swapped))
    # Every swapped loss module is an asymmetric loss and is called in the training step.
    calls = {}
    for path in _loss_paths(changes):
        module = _module_at(model, path)
        assert type(module).__name__ in ASL_TYPES, (path, module)
        calls[path] = 0
        module.register_forward_hook(lambda *_, p=path: calls.__setitem__(p, calls[p] + 1))
    cost_calls = []
    if any('Cost' in c for c in changes):
        from mmdet.registry import TASK_UTILS
        cost_cls = TASK_UTILS.get('AsymmetricFocalLossCost')
        original = cost_cls.__call__
        monkeypatch.setattr(cost_cls, '__call__', lambda self, *a, **k: cost_calls.append(1) or original(self, *a,
                                                                                                        **k))
    if family == 'PAA':
        from mmdet.models.dense_heads import paa_head
        if paa_head.skm is None:
            monkeypatch.setattr(paa_head, 'skm', types.SimpleNamespace(GaussianMixture=_TwoClusters))
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))
    hub = MessageHub.get_current_instance()
    # TOOD trains its first epochs with initial_loss_cls, then with loss_cls: one step in each phase.
    epochs = [0, model.bbox_head.initial_epoch] if family == 'TOOD' else [0]
    model.train()
    for epoch in epochs:
        hub.update_info('epoch', epoch)
        hub.update_info('iter', 0)
        losses = model.train_step(tiny_batch(), optim)
        assert all(torch.isfinite(torch.as_tensor(v)).all() for v in losses.values()), losses
    assert all(calls.values()), f'a swapped loss was not called in training: {calls}'
    if any('Cost' in c for c in changes):
        assert cost_calls, 'AsymmetricFocalLossCost was not called by the matcher'
    model.eval()
    with torch.no_grad():
        results = model.test_step(tiny_batch())
    assert len(results) == 2 and results[0].pred_instances.bboxes.shape[-1] == 4


def test_support_matrix_covers_every_mmdet_classification_loss():
    """Every row's config really carries the loss the table says (the table can not drift from MMDetection)."""
    for family, row in SUPPORT.items():
        model = mmdet_config(row['config']).model
        head = model.get('bbox_head') or model.rpn_head
        if 'RPN' in family:
            head = model.rpn_head
        elif 'RoI' in family:
            head = model.roi_head.bbox_head
            head = head[0] if isinstance(head, list) else head
        loss = head.get('loss_cls') or head.get('loss_center_heatmap')
        assert f'`{loss.type}`' in row['loss'], (family, loss.type)
        if loss.type == 'CrossEntropyLoss':
            assert ('softmax' in row['loss']) == (not loss.get('use_sigmoid', False)), family


SWAP_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'swap', '*.py')))


@pytest.mark.parametrize('path', SWAP_CONFIGS, ids=osp.basename)
def test_swap_config_is_the_documented_swap_of_its_base(path):
    """Each configs/swap/ config is ``swap_to_asl`` of its MMDetection base (with the table's arguments for that
    family), so it keeps every head-specific setting, and its family's row of the table is 'works'."""
    with open(path) as f:
        base = re.search(r"^_base_ = 'mmdet::(.+)'$", f.read(), re.M).group(1)
    rows = [row for row in SUPPORT.values() if row['config'] == base and row['outcome'] == 'works']
    assert len(rows) == 1, f'{base} is not the config of one working row of SUPPORT'
    expected, changes = swap_to_asl(mmdet_config(base).model, **rows[0].get('swap', ASL))
    assert changes
    model = Config.fromfile(path).model.to_dict()
    assert model.pop('_scope_', 'mmdet') == 'mmdet'  # an mmdet:: base gives its scope
    assert model == expected.to_dict()


def test_readme_has_the_support_table():
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        readme = f.read()
    assert support_table() in readme, ('README.md must contain the support table exactly as '
                                       '`python tools/misc/support_matrix.py` prints it')


if __name__ == '__main__':
    sys.stdout.write(support_table() + '\n')

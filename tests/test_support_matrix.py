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
from mmdet_asl.utils.configs import asymmetric_loss_cfg, swap_to_asl

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
                      message='keep GaussianFocalLoss', by_hand=('bbox_head', 'loss_center_heatmap')),
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
    'Faster R-CNN': dict(config='faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
                         loss='sigmoid `CrossEntropyLoss` (RPN), softmax `CrossEntropyLoss` (RoI)',
                         use='`AsymmetricLoss` for both (RoI: C sigmoid channels)', outcome='works'),
    'Cascade R-CNN': dict(config='cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py',
                          loss='sigmoid `CrossEntropyLoss` (RPN), softmax `CrossEntropyLoss` (RoI, 3 stages)',
                          use='`AsymmetricLoss` for all (RoI: C sigmoid channels)', outcome='works'),
}

TABLE_HEADER = ('| family | loss in MMDetection | what to use | outcome |', '|---|---|---|---|')


def support_table() -> str:
    """README's support table, one row per ``SUPPORT`` entry."""
    rows = [f'| {family} | {row["loss"]} | {row["use"]} | {row["outcome"]} |' for family, row in SUPPORT.items()]
    return '\n'.join(TABLE_HEADER + tuple(rows))


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """One intra-op thread: these tensors are tiny, and a second OpenMP thread multiplied this file's CPU time by
    about five (spin-waiting) on a loaded 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
        if 'by_hand' in row:
            # AsymmetricLoss written into the head by hand: the loss itself refuses the head's call.
            model_cfg = tiny(cfg.model)
            head, key = row['by_hand']
            model_cfg[head][key] = dict(type='AsymmetricLoss', use_sigmoid=True, **ASL)
            model = MODELS.build(model_cfg)
            model.init_weights()
            optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))
            with pytest.raises((TypeError, ValueError), match='GaussianFocalLoss'):
                model.train_step(tiny_batch(), optim)
        return
    assert row['outcome'] == 'works', row
    swapped, changes = swap_to_asl(cfg.model, **row.get('swap', ASL))
    torch.manual_seed(0)
    model = MODELS.build(tiny(swapped))
    model.init_weights()  # some DETR parameters are created uninitialised
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
    """Every row's config really carries the losses the table says (the table can not drift from MMDetection)."""
    for family, row in SUPPORT.items():
        model = mmdet_config(row['config']).model
        heads = [model.get('bbox_head'), model.get('rpn_head')]
        if 'roi_head' in model:
            stages = model.roi_head.bbox_head
            heads += list(stages) if isinstance(stages, list) else [stages]
        for head in filter(None, heads):
            loss = head.get('loss_cls') or head.get('loss_center_heatmap')
            assert f'`{loss.type}`' in row['loss'], (family, loss.type)
            if loss.type == 'CrossEntropyLoss':
                kind = 'sigmoid' if loss.get('use_sigmoid', False) else 'softmax'
                assert f'{kind} `CrossEntropyLoss`' in row['loss'], (family, kind)


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


# ---------------------------------------------------------------------------------------------------------------
# asymmetric_loss_cfg and swap_to_asl


def test_focal_loss_maps_to_asymmetric_loss_keeping_the_heads_settings():
    focal = dict(type='FocalLoss', use_sigmoid=True, gamma=1.5, alpha=0.4, reduction='none', loss_weight=3.0)
    assert asymmetric_loss_cfg(focal) == dict(type='AsymmetricLoss', use_sigmoid=True, gamma_pos=1.5,
                                              gamma_neg=1.5, clip=0.0, alpha=0.4, reduction='none',
                                              loss_weight=3.0)
    assert asymmetric_loss_cfg(focal, gamma_pos=1.0, alpha=None) == dict(
        type='AsymmetricLoss', use_sigmoid=True, gamma_pos=1.0, gamma_neg=1.5, clip=0.0, reduction='none',
        loss_weight=3.0)
    assert focal['type'] == 'FocalLoss'  # not changed in place


def test_other_sources_map_to_their_counterparts():
    assert asymmetric_loss_cfg(dict(type='QualityFocalLoss', use_sigmoid=True, activated=True, beta=3.0,
                                    loss_weight=2.0)) == dict(
        type='AsymmetricQualityFocalLoss', use_sigmoid=True, activated=True, gamma_pos=3.0, gamma_neg=3.0, clip=0.0,
        loss_weight=2.0)
    assert asymmetric_loss_cfg(dict(type='CrossEntropyLoss', use_sigmoid=True, reduction='sum')) == dict(
        type='AsymmetricLoss', use_sigmoid=True, gamma_pos=0.0, gamma_neg=0.0, clip=0.0, reduction='sum')
    assert asymmetric_loss_cfg(dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0), roi_head=True,
                               gamma_neg=2.0) == dict(type='AsymmetricLoss', use_sigmoid=True, gamma_pos=0.0,
                                                      gamma_neg=2.0, clip=0.0, loss_weight=2.0)
    assert asymmetric_loss_cfg(dict(type='VarifocalLoss', use_sigmoid=True, alpha=0.75, gamma=2.0,
                                    iou_weighted=False), clip=0.01) == dict(
        type='AsymmetricVarifocalLoss', use_sigmoid=True, alpha=0.75, gamma_neg=2.0, clip=0.01, iou_weighted=False)
    # TOOD's initial FocalLoss on probabilities: labels are quality 1, QFL's form of focal loss (without alpha).
    assert asymmetric_loss_cfg(dict(type='FocalLoss', use_sigmoid=True, activated=True, gamma=2.0, alpha=0.25),
                               alpha=None) == dict(type='AsymmetricQualityFocalLoss', use_sigmoid=True,
                                                   activated=True, gamma_pos=2.0, gamma_neg=2.0, clip=0.0)
    # Already asymmetric: kept, with the arguments applied; a registry scope is accepted.
    asl = dict(type='mmdet.AsymmetricLoss', gamma_pos=0.0, gamma_neg=4.0, clip=0.05)
    assert asymmetric_loss_cfg(asl, clip=0.0) == dict(type='AsymmetricLoss', gamma_pos=0.0, gamma_neg=4.0, clip=0.0)


@pytest.mark.parametrize('loss_cfg,args,message', [
    (dict(type='CrossEntropyLoss', use_sigmoid=False), {}, 'softmax CrossEntropyLoss.*keep CrossEntropyLoss'),
    (dict(type='CrossEntropyLoss', use_sigmoid=False, class_weight=[1.0] * 3), dict(roi_head=True),
     'class_weight'),
    (dict(type='GaussianFocalLoss'), {}, 'keep GaussianFocalLoss'),
    (dict(type='SeesawLoss'), {}, 'SeesawLoss has no asymmetric counterpart'),
    (dict(type='FocalLoss', gamma=2.0, extra=1), {}, r"\['extra'\]"),
    (dict(type='FocalLoss', use_sigmoid=False), {}, 'use_sigmoid=True'),
    (dict(type='CrossEntropyLoss', use_sigmoid=True, class_weight=[1.0, 2.0]), {}, 'class_weight'),
    (dict(type='FocalLoss', activated=True, alpha=0.25), {}, 'pass alpha=None'),
    (dict(type='FocalLoss'), dict(gama_neg=2.0), r"AsymmetricLoss takes no argument\(s\) \['gama_neg'\]"),
    (dict(type='QualityFocalLoss'), dict(alpha=0.25), r"AsymmetricQualityFocalLoss takes no argument\(s\) "
                                                      r"\['alpha'\]"),
    (dict(type='VarifocalLoss'), dict(gamma_pos=1.0), 'no focusing exponent'),
    (dict(type='VarifocalLoss'), dict(alpha=None), 'AsymmetricVarifocalLoss needs a number for alpha'),
    ('FocalLoss', {}, 'loss config dict'),
])
def test_asymmetric_loss_cfg_refuses(loss_cfg, args, message):
    with pytest.raises(ValueError, match=message):
        asymmetric_loss_cfg(loss_cfg, **args)


def test_swap_to_asl_walks_cascade_stages_and_gives_roi_heads_sigmoid_channels():
    cfg = mmdet_config('cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py')
    swapped, changes = swap_to_asl(cfg, gamma_neg=1.0)
    assert changes == ['rpn_head.loss_cls: CrossEntropyLoss -> AsymmetricLoss'] + [
        f'roi_head.bbox_head[{i}].loss_cls: CrossEntropyLoss -> AsymmetricLoss' for i in range(3)]
    for stage in swapped.model.roi_head.bbox_head:
        assert stage.loss_cls == dict(type='AsymmetricLoss', use_sigmoid=True, gamma_pos=0.0, gamma_neg=1.0,
                                      clip=0.0, loss_weight=1.0)
    assert cfg.model.rpn_head.loss_cls.type == 'CrossEntropyLoss'  # the input is not changed
    swapped, changes = swap_to_asl(cfg, only=['rpn_head'])
    assert changes == ['rpn_head.loss_cls: CrossEntropyLoss -> AsymmetricLoss']
    assert [h.loss_cls.type for h in swapped.model.roi_head.bbox_head] == ['CrossEntropyLoss'] * 3
    with pytest.raises(ValueError, match='no classification loss'):
        swap_to_asl(cfg, only=['neck'])


def test_swap_to_asl_reports_every_refused_path_and_what_can_be_swapped():
    model = dict(type='X', rpn_head=dict(loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True)),
                 bbox_head=[dict(loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False)),
                            dict(loss_center_heatmap=dict(type='GaussianFocalLoss'))])
    with pytest.raises(ValueError) as error:
        swap_to_asl(model)
    message = str(error.value)
    assert 'bbox_head[0].loss_cls: softmax CrossEntropyLoss' in message and 'keep CrossEntropyLoss' in message
    assert 'bbox_head[1].loss_center_heatmap: GaussianFocalLoss' in message and 'keep GaussianFocalLoss' in message
    assert "only=['rpn_head.loss_cls']" in message
    assert swap_to_asl(model, only=['rpn_head'])[1] == ['rpn_head.loss_cls: CrossEntropyLoss -> AsymmetricLoss']


def test_swap_to_asl_gives_the_matcher_the_losses_arguments():
    model = mmdet_config('dino/dino-4scale_r50_8xb2-12e_coco.py').model
    swapped, changes = swap_to_asl(model, gamma_pos=1.0, gamma_neg=3.0, clip=0.02)
    assert changes == ['bbox_head.loss_cls: FocalLoss -> AsymmetricLoss',
                       'train_cfg.assigner.match_costs[0]: FocalLossCost -> AsymmetricFocalLossCost']
    cost = swapped.train_cfg.assigner.match_costs[0]
    assert cost == dict(type='AsymmetricFocalLossCost', gamma_pos=1.0, gamma_neg=3.0, clip=0.02, alpha=0.25,
                        weight=2.0)
    assert swapped.train_cfg.assigner.match_costs[1:] == model.train_cfg.assigner.match_costs[1:]
    # Swapping again changes nothing.
    assert swap_to_asl(swapped, gamma_pos=1.0, gamma_neg=3.0, clip=0.02)[1] == []


def test_unweighted_loss_gets_the_unweighted_matching_cost():
    """A loss without alpha: the cost with alpha 0.5 and twice the weight is -log(p) (1-p)^g+ + log(1-p) p^g-,
    times FocalLossCost's weight (computed here by hand)."""
    from mmdet.registry import TASK_UTILS
    model = mmdet_config('dino/dino-4scale_r50_8xb2-12e_coco.py').model
    cost_cfg = swap_to_asl(model, gamma_pos=1.0, gamma_neg=2.0, clip=0.0, alpha=None)[0].train_cfg.assigner
    cost = TASK_UTILS.build(cost_cfg.match_costs[0])
    logits = torch.tensor([[-2.0, 0.5, 1.5], [0.3, -1.0, 2.5]], dtype=torch.float64)
    labels = torch.tensor([2, 0])
    got = cost(InstanceData(scores=logits), InstanceData(labels=labels))
    p = logits.sigmoid()[:, labels]
    expected = 2.0 * (-torch.log(p) * (1 - p) + torch.log(1 - p) * p**2)  # FocalLossCost's weight 2 in DINO
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-9)


def test_swap_in_a_config_file(tmp_path):
    """README's snippet: a config that swaps its base with ``_delete_=True`` keeps FSAF's reduction='none'."""
    path = tmp_path / 'fsaf_asl.py'
    path.write_text("_base_ = 'mmdet::fsaf/fsaf_r50_fpn_1x_coco.py'\n"
                    "custom_imports = dict(imports=['mmdet_asl'], allow_failed_imports=False)\n"
                    'from mmdet_asl.utils.configs import swap_to_asl  # noqa: E402\n\n'
                    'model = dict(_delete_=True, **swap_to_asl(_base_.model, gamma_pos=1.0, gamma_neg=2.0, clip=0.0, '
                    'alpha=None)[0])\n')
    cfg = Config.fromfile(str(path))
    assert cfg.model.bbox_head.loss_cls.to_dict() == dict(type='AsymmetricLoss', use_sigmoid=True, gamma_pos=1.0,
                                                          gamma_neg=2.0, clip=0.0, reduction='none',
                                                          loss_weight=1.0)
    base = mmdet_config('fsaf/fsaf_r50_fpn_1x_coco.py')
    assert cfg.model.bbox_head.loss_bbox == base.model.bbox_head.loss_bbox


def _flat(value):
    """A loss entry (a tensor, or a list of them per level) as one 1-D tensor."""
    return torch.cat([v.reshape(-1) for v in (value if isinstance(value, (list, tuple)) else [value])])


@pytest.mark.parametrize('family,loss_key', [('FSAF', 'loss_cls'), ('YOLOX', 'loss_cls'), ('DINO', 'loss_cls')])
def test_swap_without_arguments_trains_as_before(family, loss_key):
    """With no ASL arguments the swapped model's losses equal the original's on the same weights and batch:
    FSAF needs its reduction='none', YOLOX its reduction='sum', DINO the matcher's cost of the same loss."""
    register_all_modules()
    model_cfg = mmdet_config(SUPPORT[family]['config']).model
    losses = []
    for cfg in (model_cfg, swap_to_asl(model_cfg)[0]):
        torch.manual_seed(0)
        model = MODELS.build(tiny(cfg))
        model.init_weights()  # some DETR parameters are created uninitialised
        model.train()
        data = model.data_preprocessor(tiny_batch(), training=True)
        torch.manual_seed(1)  # DINO's denoising queries are random
        losses.append(model.loss(data['inputs'], data['data_samples']))
    assert set(losses[0]) == set(losses[1])
    for key in losses[0]:
        if key.endswith(loss_key):
            # FocalLoss divides by a (1,) avg_factor tensor in the DETR heads: compare the values
            torch.testing.assert_close(_flat(losses[1][key]), _flat(losses[0][key]), rtol=1e-4, atol=1e-6,
                                       msg=lambda m, k=key: f'{k}: {m}')


@pytest.mark.parametrize('config,head', [('double_heads/dh-faster-rcnn_r50_fpn_1x_coco.py', 'DoubleConvFCBBoxHead'),
                                         ('sabl/sabl-cascade-rcnn_r50_fpn_1x_coco.py', 'SABLHead')])
def test_swap_refuses_roi_heads_that_always_build_softmax_channels(config, head):
    """These RoI heads size their classifier C + 1 without asking the loss: an asymmetric loss there would train
    the background as a class, silently. The RPN alone can still be swapped."""
    model = mmdet_config(config).model
    with pytest.raises(ValueError, match=f'{head} always builds C \\+ 1 softmax classifier channels'):
        swap_to_asl(model)
    swapped, changes = swap_to_asl(model, only=['rpn_head'])
    assert changes == ['rpn_head.loss_cls: CrossEntropyLoss -> AsymmetricLoss']

"""Single-label recipes (appendix H): sigmoid ASL on one-hot targets as the default, standard softmax
cross-entropy and softmax focal twins, the CUB and Herbarium 2020 configs (one training step each on a tiny
Herbarium-layout set) and the macro-F1 metric."""
import glob
import json
import math
import os.path as osp
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mmdet_asl  # noqa: F401

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'tools', 'dataset_converters'))
import herbarium2020_to_lists as h2l  # noqa: E402

CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'single_label', '*.py')))
LOSS_TYPES = {'asl': 'mmdet.AsymmetricLoss', 'ce': 'CrossEntropyLoss', 'focal': 'SoftmaxFocalLoss'}


def _kind(path):
    return osp.basename(path).split('_')[1]


def test_softmax_focal_is_standard():
    logits = torch.randn(6, 5, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    ce = MODELS.build(dict(type='SoftmaxFocalLoss', gamma=0.0))
    torch.testing.assert_close(ce(logits.float(), labels, avg_factor=6),
                               F.cross_entropy(logits.float(), labels), rtol=1e-6, atol=1e-7)
    focal = MODELS.build(dict(type='SoftmaxFocalLoss', gamma=2.0))
    p = logits.softmax(1)[torch.arange(6), labels]
    by_hand = (-(1 - p) ** 2 * p.log()).tolist()
    out = focal(logits, labels, reduction_override='none')
    torch.testing.assert_close(out, torch.tensor(by_hand, dtype=out.dtype), rtol=1e-5, atol=1e-7)
    x = logits.float().requires_grad_()
    focal(x, labels, avg_factor=6).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='soft targets'):
        focal(x, torch.rand(6, 5))
    with pytest.raises(ValueError, match=r'labels must be in \[0, 5\)'):
        focal(x, torch.tensor([0, 1, 2, 3, 4, 5]))
    with pytest.raises(ValueError, match='gamma'):
        MODELS.build(dict(type='SoftmaxFocalLoss', gamma=-1.0))


def test_sigmoid_asl_on_one_hot_targets_in_a_linear_head():
    """The paper's single-label form: Eq. 7 summed over the classes of a one-hot target, mean over samples."""
    init_default_scope('mmpretrain')
    head = MODELS.build(dict(type='LinearClsHead', num_classes=4, in_channels=3,
                             loss=dict(type='mmdet.AsymmetricLoss', gamma_pos=0.0, gamma_neg=4.0, clip=0.05)))
    feats = torch.randn(2, 3)
    samples = [DataSample().set_gt_label(1), DataSample().set_gt_label(3)]
    loss = head.loss((feats, ), samples)['loss']
    logits = head.fc(feats).detach().double()
    total = 0.0
    for row, label in zip(logits.tolist(), (1, 3)):
        for c, z in enumerate(row):
            p = 1 / (1 + math.exp(-z))
            if c == label:
                total -= math.log(p)
            else:
                pm = max(p - 0.05, 0.0)
                total -= pm ** 4 * math.log(1 - pm)
    assert loss.item() == pytest.approx(total / 2, rel=1e-5)


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds_and_twins_change_only_the_loss(path):
    cfg = Config.fromfile(path)
    init_default_scope('mmpretrain')
    kind = _kind(path)
    assert cfg.model.head.loss.type == LOSS_TYPES[kind]
    assert cfg.model.backbone.init_cfg is None  # nothing downloads
    assert any(e.type == 'SingleLabelMetric' and e.average == 'macro' and 'f1-score' in e['items']
               for e in cfg.val_evaluator)
    assert cfg.data_preprocessor.num_classes == cfg.model.head.num_classes
    if kind == 'asl':
        loss = cfg.model.head.loss
        assert (loss.gamma_pos, loss.gamma_neg, loss.clip) == (0.0, 4.0, 0.05)
    else:
        twin = Config.fromfile(path.replace(f'_{kind}_', '_asl_')).to_dict()
        mine = cfg.to_dict()
        for d in (twin, mine):
            d['model']['head'].pop('loss')
        assert mine == twin


def _herbarium(tmp_path, per_class=(3, 1, 4)):
    root = tmp_path / 'herbarium'
    images, anns = [], []
    for cat, n in zip((7, 3, 11), per_class):
        for _ in range(n):
            i = len(images)
            name = f'images/{cat}/{i}.jpg'
            (root / 'train' / 'images' / str(cat)).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((40, 40, 3), 20 * i, np.uint8)).save(root / 'train' / name)
            images.append(dict(id=100 + i, file_name=name))
            anns.append(dict(id=i, image_id=100 + i, category_id=cat))
    cats = [dict(id=c, name=f'species {c}') for c in (11, 3, 7)]
    (root / 'train' / 'metadata.json').write_text(json.dumps(dict(images=images, annotations=anns, categories=cats)))
    return root


def test_herbarium_lists(tmp_path):
    root = _herbarium(tmp_path)
    assert h2l.main([str(root), '--val-ratio', '0.3']) == 0
    train = (root / 'meta' / 'train.txt').read_text().split('\n')[:-1]
    val = (root / 'meta' / 'val.txt').read_text().split('\n')[:-1]
    assert (root / 'meta' / 'classes.txt').read_text() == 'species 3\nspecies 7\nspecies 11\n'
    assert len(train) + len(val) == 8
    val_labels = sorted(int(line.split()[1]) for line in val)
    assert val_labels == [1, 2]  # one of class 7's 3 and of class 11's 4; class 3's only image stays in train
    assert all(line.startswith('images/7/') for line in train + val if line.endswith(' 1'))
    with pytest.raises(FileNotFoundError, match='metadata.json'):
        h2l.main([str(tmp_path / 'absent')])


@pytest.mark.parametrize('kind', ['asl', 'ce', 'focal'])
def test_herbarium_config_trains_one_step(kind, tmp_path):
    from mmengine.runner import Runner
    root = _herbarium(tmp_path, per_class=(2, 1, 1))
    assert h2l.main([str(root), '--val-ratio', '0.0']) == 0
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'single_label', f'resnet50_{kind}_8xb8_herbarium2020-448px.py'))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.model.head.num_classes = cfg.data_preprocessor.num_classes = 3
    ds = cfg.train_dataloader.dataset
    ds.data_root, ds.classes = str(root), str(root / 'meta' / 'classes.txt')
    ds.pipeline = [t for t in ds.pipeline if t.type != 'Resize']
    for t in ds.pipeline:
        if t.type == 'RandomCrop':
            t.crop_size = 32
    cfg.train_dataloader.update(batch_size=4, num_workers=0, persistent_workers=False)
    cfg.train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=100)
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator', 'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    before = runner.model.head.fc.weight.detach().clone()
    runner.train()
    assert runner.iter == 1 and not torch.equal(before, runner.model.head.fc.weight)
    assert type(runner.model.head.loss_module).__name__ == LOSS_TYPES[kind].split('.')[-1]


def test_single_label_far_wrong_target_keeps_its_gradient():
    """Default eps = 0: a target class 40 logits below the others keeps the cross-entropy gradient p_t - 1;
    the official floor (eps = 1e-8) leaves it none."""
    from mmdet_asl.ops.asl import asymmetric_loss_single_label
    for eps, expected in ((0.0, -1.0), (1e-8, 0.0)):
        z = torch.tensor([[-40.0, 0.0, 0.0]], dtype=torch.float64, requires_grad=True)
        loss = asymmetric_loss_single_label(z, torch.tensor([0]), gamma_pos=0.0, gamma_neg=4.0, eps=eps)
        loss.sum().backward()
        assert torch.isfinite(loss).all() and torch.isfinite(z.grad).all()
        assert float(z.grad[0, 0]) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize('dtype', [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64])
def test_single_label_asl_takes_any_integer_labels(dtype):
    """With gamma+ = gamma- = 0 and m = 0: -log p_t - sum over c != t of log(1 - p_c), p = softmax(z)."""
    from mmdet_asl.ops.asl import asymmetric_loss_single_label
    z = [[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]]
    labels = [2, 0]
    expected = []
    for row, t in zip(z, labels):
        e = [math.exp(v) for v in row]
        p = [v / sum(e) for v in e]
        expected.append(-math.log(p[t]) - sum(math.log(1 - p[c]) for c in range(3) if c != t))
    out = asymmetric_loss_single_label(torch.tensor(z, dtype=torch.float64), torch.tensor(labels, dtype=dtype),
                                       gamma_pos=0.0, gamma_neg=0.0, clip=0.0)
    assert out.tolist() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize('labels', [torch.tensor([0.0, 2.0]), torch.tensor([True, False])])
def test_single_label_asl_refuses_float_and_bool_labels(labels):
    from mmdet_asl.ops.asl import asymmetric_loss_single_label
    with pytest.raises(TypeError, match=rf'labels must be integer class indices.*got {labels.dtype}'):
        asymmetric_loss_single_label(torch.randn(2, 3), labels)


def test_single_label_asl_refuses_a_per_class_gamma_of_another_length():
    from mmdet_asl.ops.asl import asymmetric_loss_single_label
    with pytest.raises(ValueError, match='gamma_neg per class has 2 entries, but pred .* C = 3'):
        asymmetric_loss_single_label(torch.randn(2, 3), torch.tensor([0, 2]), gamma_neg=torch.tensor([1.0, 2.0]))


@pytest.mark.parametrize('kwargs,match', [(dict(loss_weight=-1.0), 'loss_weight'),
                                          (dict(loss_weight=float('nan')), 'loss_weight'),
                                          (dict(gamma=float('inf')), 'gamma'),
                                          (dict(gamma=float('nan')), 'gamma')])
def test_softmax_focal_refuses_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type='SoftmaxFocalLoss', **kwargs))


def test_softmax_focal_refuses_non_finite_logits_and_negative_avg_factor():
    focal = MODELS.build(dict(type='SoftmaxFocalLoss', gamma=2.0))
    labels = torch.tensor([0, 1, 2])
    for bad in (float('nan'), float('inf')):
        z = torch.randn(3, 4)
        z[1, 2] = bad
        with pytest.raises(ValueError, match=r'cls_score \(logits\) contains 1 non-finite'):
            focal(z, labels, avg_factor=3)
    z = torch.randn(3, 4)
    for avg in (-1.0, float('nan'), torch.tensor(-1e-7)):
        with pytest.raises(ValueError, match='avg_factor'):
            focal(z, labels, avg_factor=avg)
    # avg_factor 0 (nothing to average over) divides by eps, as the ASL and MMDetection do
    torch.testing.assert_close(focal(z, labels, avg_factor=0.0),
                               focal(z, labels, reduction_override='sum') / torch.finfo(torch.float32).eps)


def test_single_label_asl_margin_and_both_gammas_by_hand():
    """gamma+ = 1, gamma- = 2, m = 0.1 (Eq. 5 and 7 on softmax probabilities, appendix H), by hand in float64."""
    from mmdet_asl.ops.asl import asymmetric_loss_single_label
    rows, labels = [[1.0, 2.0, 0.5], [3.0, -1.0, 0.0]], [1, 2]
    expected = []
    for row, t in zip(rows, labels):
        e = [math.exp(v) for v in row]
        p = [v / sum(e) for v in e]
        total = -(1 - p[t]) * math.log(p[t])
        for c in range(3):
            if c != t:
                p_m = max(p[c] - 0.1, 0.0)
                total -= p_m ** 2 * math.log(1 - p_m)
        expected.append(total)
    out = asymmetric_loss_single_label(torch.tensor(rows, dtype=torch.float64), torch.tensor(labels),
                                       gamma_pos=1.0, gamma_neg=2.0, clip=0.1)
    assert out.tolist() == pytest.approx(expected, rel=1e-12)


def test_softmax_focal_weight_loss_weight_and_reductions_by_hand():
    """Per sample -(1 - p_t)^2 log p_t, times the (N,) weight and loss_weight; 'mean' without avg_factor is
    the mean over samples, with it sum / avg_factor; (N, 1) labels are taken as (N,)."""
    rows, labels, weight = [[1.0, 2.0, 0.5], [3.0, -1.0, 0.0], [0.0, 0.0, 0.0]], [1, 2, 0], [1.0, 0.5, 2.0]
    per_sample = []
    for row, t, w in zip(rows, labels, weight):
        e = [math.exp(v) for v in row]
        p_t = e[t] / sum(e)
        per_sample.append(-(1 - p_t) ** 2 * math.log(p_t) * w)
    focal = MODELS.build(dict(type='SoftmaxFocalLoss', gamma=2.0, loss_weight=0.5))
    z, w = torch.tensor(rows, dtype=torch.float64), torch.tensor(weight)
    for label in (torch.tensor(labels), torch.tensor(labels).view(3, 1)):
        assert focal(z, label, w).item() == pytest.approx(0.5 * sum(per_sample) / 3, rel=1e-6)
        assert focal(z, label, w, avg_factor=4.0).item() == pytest.approx(0.5 * sum(per_sample) / 4, rel=1e-6)
        assert focal(z, label, w, reduction_override='sum').item() == pytest.approx(0.5 * sum(per_sample), rel=1e-6)
        assert focal(z, label, w, reduction_override='none').tolist() == pytest.approx(
            [0.5 * v for v in per_sample], rel=1e-6)

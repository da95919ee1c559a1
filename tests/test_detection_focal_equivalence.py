"""ASL in its focal-equivalent setting (gamma_pos = gamma_neg = 2, clip = 0, alpha = 0.25) gives the same head
losses and gradients as MMDetection's FocalLoss inside FCOS's and ATSS's heads (index labels with bg = C,
avg_factor = num_pos; ATSS also passes label_weights)."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules

import mmdet_asl  # noqa: F401

FOCAL = dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)
ASL_AS_FOCAL = dict(type='AsymmetricLoss', use_sigmoid=True, gamma_pos=2.0, gamma_neg=2.0, clip=0.0, alpha=0.25,
                    loss_weight=1.0)


def head_cfg(base):
    import mmdet
    cfg = Config.fromfile(osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', base))
    head = cfg.model.bbox_head
    head.update(num_classes=3, in_channels=32, feat_channels=32, stacked_convs=1)
    if head.type == 'ATSSHead':
        head.train_cfg = cfg.model.train_cfg
        head.test_cfg = cfg.model.test_cfg
    return head.to_dict()


def samples(n=2, size=(128, 160)):
    out = []
    for i in range(n):
        s = DetDataSample(metainfo=dict(img_shape=size, pad_shape=size, batch_input_shape=size))
        s.gt_instances = InstanceData(bboxes=torch.tensor([[8., 10., 60., 70.], [40., 30., 150., 120.],
                                                           [100., 5., 130., 40.]]),
                                      labels=torch.tensor([0, 2, 1]))
        out.append(s)
    return out


@pytest.mark.parametrize('base', ['fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
                                  'atss/atss_r50_fpn_1x_coco.py'])
def test_head_loss_asl_equals_focal(base):
    register_all_modules()
    torch.manual_seed(0)
    cfg = head_cfg(base)
    focal_head = MODELS.build(dict(cfg, loss_cls=FOCAL))
    focal_head.init_weights()
    asl_head = MODELS.build(dict(copy.deepcopy(cfg), loss_cls=ASL_AS_FOCAL))
    missing, unexpected = asl_head.load_state_dict(focal_head.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("loss_cls.") for k in missing)  # ASL keeps gamma- in a buffer
    assert type(asl_head.loss_cls).__name__ == 'AsymmetricLoss'
    strides = (8, 16, 32, 64, 128)
    feats = [torch.randn(2, 32, -(-128 // s), -(-160 // s)) for s in strides]
    data = samples()
    lf = focal_head.loss(feats, data)
    la = asl_head.loss(feats, data)
    assert set(lf) == set(la)
    for key in lf:
        a = torch.stack(list(la[key])).sum() if isinstance(la[key], (list, tuple)) else la[key]
        f = torch.stack(list(lf[key])).sum() if isinstance(lf[key], (list, tuple)) else lf[key]
        torch.testing.assert_close(a, f, rtol=1e-5, atol=1e-6, msg=key)
    sum_f = sum(torch.stack(list(v)).sum() if isinstance(v, (list, tuple)) else v for v in lf.values())
    sum_a = sum(torch.stack(list(v)).sum() if isinstance(v, (list, tuple)) else v for v in la.values())
    assert sum_f.item() > 0
    sum_f.backward()
    sum_a.backward()
    for (name, pf), (_, pa) in zip(focal_head.named_parameters(), asl_head.named_parameters()):
        if pf.grad is not None:
            torch.testing.assert_close(pa.grad, pf.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_far_wrong_logits_keep_focal_gradient():
    """Far outside the usual range (a positive at z = -40, a negative at z = +40) ASL's default (no floor in the
    logs) still equals FocalLoss in value and gradient. The official implementation's floor (eps = 1e-8)
    makes log p constant there instead: such an element's gradient all but vanishes, and a run whose
    positives all fall below p = 1e-8 cannot recover (docs/detection.md)."""
    register_all_modules()
    z = torch.linspace(-40, 40, 161, dtype=torch.float64).reshape(-1, 1).repeat(1, 2)
    labels = torch.tensor([i % 3 for i in range(z.shape[0])])  # 0, 1 and background (2)

    def loss_and_grad(cfg):
        logits = z.clone().requires_grad_(True)
        loss = MODELS.build(cfg)(logits, labels, avg_factor=7.0)
        loss.backward()
        return loss.detach(), logits.grad

    focal, focal_grad = loss_and_grad(FOCAL)
    asl, asl_grad = loss_and_grad(ASL_AS_FOCAL)
    torch.testing.assert_close(asl, focal, rtol=1e-12, atol=0)
    torch.testing.assert_close(asl_grad, focal_grad, rtol=1e-9, atol=1e-15)
    wrong_pos = (labels == 0) & (z[:, 0] < -20)  # column 0: positives of class 0 far below zero
    assert bool(wrong_pos.any()) and bool((focal_grad[wrong_pos, 0] < -0.2 / 7).all())
    _, floored_grad = loss_and_grad(dict(ASL_AS_FOCAL, eps=1e-8))
    assert float(floored_grad[wrong_pos, 0].abs().max()) < 1e-8  # only the focusing weight's p-sized term

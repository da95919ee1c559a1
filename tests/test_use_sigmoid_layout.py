"""A loss config without ``use_sigmoid=True``: MMDetection's dense heads read the key from the config dict and
without it build C + 1 softmax channels, labelling the background C, which a sigmoid loss would train as one more
class. Building such a head refuses it, naming the key; written, the same head trains. Elsewhere (direct calls,
MMPretrain heads, DETR heads that read the built loss) the key may be left out."""
import pytest
import torch
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules

import mmdet_asl  # noqa: F401  (registers the losses)
from mmdet_asl.models import AsymmetricLoss

register_all_modules()
SIZE = (64, 80)
HEADS = {
    'FCOSHead': (dict(type='FCOSHead', strides=[8, 16, 32], regress_ranges=((-1, 64), (64, 128), (128, 1e8)),
                      norm_cfg=None),
                 dict(type='AsymmetricLoss', gamma_pos=1.0, gamma_neg=2.0, clip=0.0)),
    'GFLHead': (dict(type='GFLHead', anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], octave_base_scale=8,
                                                         scales_per_octave=1, strides=[8, 16, 32]),
                     loss_bbox=dict(type='GIoULoss', loss_weight=2.0), norm_cfg=None,
                     train_cfg=dict(assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1, pos_weight=-1,
                                    debug=False)),
                dict(type='AsymmetricQualityFocalLoss', gamma_pos=2.0, gamma_neg=4.0, clip=0.0)),
}


def batch():
    data = []
    for _ in range(2):
        s = DetDataSample(metainfo=dict(img_shape=SIZE, pad_shape=SIZE, batch_input_shape=SIZE))
        s.gt_instances = InstanceData(bboxes=torch.tensor([[4., 5., 30., 35.], [20., 15., 75., 60.]]),
                                      labels=torch.tensor([0, 2]))
        data.append(s)
    return data


@pytest.mark.parametrize('head_type', list(HEADS))
def test_a_dense_head_without_use_sigmoid_is_refused_by_name_and_trains_with_it(head_type):
    head_cfg, loss_cfg = HEADS[head_type]
    cfg = dict(head_cfg, num_classes=3, in_channels=8, feat_channels=8, stacked_convs=1)
    torch.manual_seed(0)
    feats = [torch.randn(2, 8, -(-SIZE[0] // s), -(-SIZE[1] // s)) for s in (8, 16, 32)]
    with pytest.raises(ValueError, match=rf"{head_type} built a softmax classifier .* write use_sigmoid=True in "
                                         "loss_cls's config"):
        MODELS.build(dict(cfg, loss_cls=loss_cfg))
    head = MODELS.build(dict(cfg, loss_cls=dict(loss_cfg, use_sigmoid=True)))
    assert head.cls_out_channels == 3
    loss_cls = head.loss(feats, batch())['loss_cls']
    assert torch.isfinite(sum(loss_cls) if isinstance(loss_cls, list) else loss_cls)  # GFL: one per level


def test_direct_calls_without_use_sigmoid_are_not_refused():
    loss = AsymmetricLoss()
    assert loss.use_sigmoid is True  # DETR heads size their classifier from the built loss's attribute
    # single-label classification: labels in [0, C) without a background index, the last class the majority
    logits, labels = torch.randn(6, 3), torch.tensor([0, 2, 2, 2, 2, 1])
    assert torch.isfinite(loss(logits, labels))
    with pytest.raises(ValueError, match='only supports use_sigmoid=True'):
        AsymmetricLoss(use_sigmoid=False)

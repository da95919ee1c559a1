"""AsymmetricLoss in an RoI bbox head (Faster R-CNN's Shared2FCBBoxHead in a StandardRoIHead): C sigmoid channels
through MMDetection's custom classifier contract, background = a negative of every class, C + 1 scores at
prediction."""
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmdet.models.losses import accuracy
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample

from mmdet_asl.ops.asl.reference import asymmetric_loss_reference, dense_target

C = 3
ASL = dict(type='AsymmetricLoss', use_sigmoid=True, gamma_pos=0.0, gamma_neg=4.0, clip=0.05, loss_weight=1.0)


def bbox_head_cfg(loss_cls=ASL):
    return dict(type='Shared2FCBBoxHead', in_channels=4, fc_out_channels=16, roi_feat_size=7, num_classes=C,
                bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4, target_stds=[0.1, 0.1, 0.2, 0.2]),
                reg_class_agnostic=False, loss_cls=loss_cls, loss_bbox=dict(type='L1Loss', loss_weight=1.0))


def roi_head(loss_cls=ASL):
    torch.manual_seed(0)
    return MODELS.build(dict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(type='SingleRoIExtractor', roi_layer=dict(type='RoIAlign', output_size=7,
                                                                             sampling_ratio=0),
                                out_channels=4, featmap_strides=[8]),
        bbox_head=bbox_head_cfg(loss_cls),
        train_cfg=ConfigDict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
                                           match_low_quality=False, ignore_iof_thr=-1),
                             sampler=dict(type='RandomSampler', num=32, pos_fraction=0.25, neg_pos_ub=-1,
                                          add_gt_as_proposals=True),
                             pos_weight=-1, debug=False),
        test_cfg=ConfigDict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5), max_per_img=20)))


def batch():
    g = torch.Generator().manual_seed(1)
    feats = (torch.randn(2, 4, 8, 8, generator=g), )
    samples, proposals = [], []
    for i in range(2):
        sample = DetDataSample(metainfo=dict(img_shape=(64, 64), pad_shape=(64, 64), batch_input_shape=(64, 64),
                                             scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(bboxes=torch.tensor([[4., 6., 30., 40.], [20., 10., 60., 50.]]),
                                           labels=torch.tensor([i, 2]))
        samples.append(sample)
        xy = torch.rand(12, 2, generator=g) * 40
        proposals.append(InstanceData(bboxes=torch.cat([xy, xy + 10 + torch.rand(12, 2, generator=g) * 20], 1)))
    return feats, samples, proposals


def test_classifier_has_c_sigmoid_channels():
    head = MODELS.build(bbox_head_cfg())
    assert head.fc_cls.out_features == C  # not C + 1: no softmax background channel
    assert head.custom_cls_channels and head.custom_activation and head.custom_accuracy
    # The channel count comes from the loss: the softmax loss of the same head has C + 1.
    ce = MODELS.build(bbox_head_cfg(dict(type='CrossEntropyLoss', use_sigmoid=False)))
    assert ce.fc_cls.out_features == C + 1


def test_loss_background_is_a_negative_of_every_class():
    head = roi_head()
    seen = []
    forward = head.bbox_head.loss_cls.forward

    def spy(pred, target, *args, **kwargs):
        seen.append((pred.detach().clone(), target.clone(), args, kwargs))
        return forward(pred, target, *args, **kwargs)

    head.bbox_head.loss_cls.forward = spy
    feats, samples, proposals = batch()
    losses = head.loss(feats, proposals, samples)
    (pred, labels, (label_weights, ), kwargs), = seen
    assert pred.shape[1] == C and (labels == C).any() and (labels < C).any()
    # Independent route: ASL (Eq. 7) on one-hot targets whose background rows are all zeros, summed over classes
    # and divided by the head's avg_factor (the number of sampled RoIs with weight > 0).
    target = dense_target(labels, C, dtype=torch.float32)
    expected = (asymmetric_loss_reference(pred, target, gamma_pos=0.0, gamma_neg=4.0, clip=0.05)
                * label_weights[:, None]).sum() / max((label_weights > 0).sum().item(), 1)
    torch.testing.assert_close(losses['loss_cls'], expected, rtol=1e-5, atol=1e-7)
    assert kwargs['avg_factor'] == max((label_weights > 0).sum().item(), 1)
    # Accuracy as the softmax head logs it: argmax over the C class probabilities and prod(1 - p) as background.
    p = pred.sigmoid()
    scores = torch.cat([p, (1 - p).prod(1, keepdim=True)], 1)
    torch.testing.assert_close(losses['acc'], accuracy(scores, labels))
    losses['loss_cls'].backward()
    assert head.bbox_head.fc_cls.weight.grad.abs().sum() > 0


def test_predict_gets_c_plus_one_scores():
    head = roi_head()
    head.eval()
    feats, samples, proposals = batch()
    rois = torch.cat([torch.cat([torch.full((len(p.bboxes), 1), float(i)), p.bboxes], 1)
                      for i, p in enumerate(proposals)])
    cls_score = head._bbox_forward(feats, rois)['cls_score']
    assert cls_score.shape == (len(rois), C)
    scores = head.bbox_head.loss_cls.get_activation(cls_score)
    assert scores.shape == (len(rois), C + 1)
    p = cls_score.sigmoid()
    torch.testing.assert_close(scores[:, :C], p)
    torch.testing.assert_close(scores[:, C], (1 - p).prod(1))
    with torch.no_grad():
        results = head.predict(feats, proposals, samples, rescale=False)
    for i, res in enumerate(results):
        assert len(res) > 0 and (res.labels < C).all()
        # Every kept score is one of the class sigmoids of this image's RoIs (no softmax renormalisation).
        img_p = p[rois[:, 0] == i]
        assert all(bool(torch.isclose(img_p, s).any()) for s in res.scores)


def test_dense_heads_keep_their_sigmoid_path():
    """Outside RoI heads ``get_cls_channels`` is never called: ``get_activation`` is the plain sigmoid (dense
    heads' prediction calls it) and no accuracy is logged."""
    loss = MODELS.build(ASL)
    assert loss.custom_cls_channels and not loss.custom_activation and not loss.custom_accuracy
    x = torch.randn(5, C)
    torch.testing.assert_close(loss.get_activation(x), x.sigmoid())


def test_wrong_channel_count_is_refused():
    head = MODELS.build(bbox_head_cfg())
    with pytest.raises(ValueError, match='RoI bbox head was built with 3 sigmoid channels'):
        head.loss_cls(torch.randn(4, C + 1), torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match='num_classes of the bbox head'):
        MODELS.build(ASL).get_cls_channels(0)

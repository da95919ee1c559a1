# GFL (Generalized Focal Loss: QualityFocalLoss on an IoU-quality target, DistributionFocalLoss, ATSS
# assignment) on the main job's setting: FPN fine-tuned from ImageNet EfficientNet-Lite0 on the DeepForest tiles,
# same data, schedule and test-time augmentation as fcos_effnet-lite0_focal_deepforest.py; only the head differs.
# The twin gfl_effnet-lite0_aqfl_deepforest.py changes only loss_cls (docs/detection.md, quality-focal heads).
#   python tools/analysis_tools/detection_seeds.py --variants gfl_qfl gfl_aqfl --seeds 0 1 2
_base_ = './fcos_effnet-lite0_focal_deepforest.py'

model = dict(
    type='GFL',
    bbox_head=dict(
        _delete_=True,
        type='GFLHead',
        num_classes=1,
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        # One square anchor per location, 4 x the stride (32, 64, 128 px at strides 8, 16, 32): tree crowns are
        # 12-80 px at 320 px, and ATSS picks its positives by distance and an adaptive IoU threshold.
        anchor_generator=dict(
            type='AnchorGenerator', ratios=[1.0], octave_base_scale=4, scales_per_octave=1, strides=[8, 16, 32]),
        loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
        loss_dfl=dict(type='DistributionFocalLoss', loss_weight=0.25),
        reg_max=16,
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0)),
    train_cfg=dict(assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1, pos_weight=-1, debug=False),
    test_cfg=dict(
        _delete_=True, nms_pre=1000, min_bbox_size=0, score_thr=0.05, nms=dict(type='nms', iou_threshold=0.6),
        max_per_img=300))

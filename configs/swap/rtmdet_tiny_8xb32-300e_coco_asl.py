# MMDetection's RTMDet-tiny config (the _base_ below) with ASL's asymmetry in its Quality Focal Loss; nothing else
# changes. gamma+ = 1, gamma- = 2 (QFL's beta is 2 for both), m = 0: why in configs/swap/README.md.
_base_ = 'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py'

custom_imports = dict(imports=['mmdet_asl'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(
        loss_cls=dict(
            _delete_=True,
            type='AsymmetricQualityFocalLoss',  # takes RTMDet's (labels, soft IoU) targets, as QualityFocalLoss
            use_sigmoid=True,
            gamma_pos=1.0,
            gamma_neg=2.0,
            clip=0.0,
            loss_weight=1.0)))

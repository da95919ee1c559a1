# MMDetection's DINO-4scale R50 12e config (the _base_ below) with the Asymmetric Loss as loss_cls and the matching
# cost of the same loss in the Hungarian assigner; nothing else changes. gamma+ = 1, gamma- = 2, m = 0.
_base_ = 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py'

custom_imports = dict(imports=['mmdet_asl'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(
        loss_cls=dict(
            _delete_=True,
            type='AsymmetricLoss',
            use_sigmoid=True,  # the DETR heads size their classifier from it
            gamma_pos=1.0,
            gamma_neg=2.0,
            clip=0.0,
            loss_weight=1.0)),
    train_cfg=dict(
        assigner=dict(
            # Queries are matched by what the loss charges them. FocalLossCost(weight=2) matched FocalLoss's
            # alpha-weighted terms; the loss has no alpha here: alpha 0.5 with twice the weight is the unweighted
            # cost.
            match_costs=[
                dict(type='AsymmetricFocalLossCost', gamma_pos=1.0, gamma_neg=2.0, clip=0.0, alpha=0.5, weight=4.0),
                dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                dict(type='IoUCost', iou_mode='giou', weight=2.0)
            ])))

# RetinaNet R50 1x: MMDetection's own config with the Asymmetric Loss in place of the classification FocalLoss.
# Only loss_cls changes; everything else (model, data, schedule) is 'retinanet/retinanet_r50_fpn_1x_coco.py'.
# ASL: gamma+ = 1, gamma- = 2 (the ASL paper's detection setting), probability margin clip = 0 (chosen on the
# DeepForest demo, see docs/detection.md; FCOS/ATSS/RetinaNet initialise the class prior to 0.01 < 0.05).
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmdet_asl'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(
        loss_cls=dict(
            _delete_=True,
            type='AsymmetricLoss',
            use_sigmoid=True,  # dense heads size cls_out_channels from it
            gamma_pos=1.0,
            gamma_neg=2.0,
            clip=0.0,
            loss_weight=1.0)))

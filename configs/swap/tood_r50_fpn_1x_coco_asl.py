# MMDetection's TOOD R50 1x config (the _base_ below) with ASL's asymmetry in both of its classification losses;
# nothing else changes. gamma+ = 1, gamma- = 2, m = 0: why in configs/swap/README.md.
_base_ = 'mmdet::tood/tood_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmdet_asl'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(
        # The first 4 epochs (train_cfg.initial_epoch): FocalLoss on probabilities with class labels. Labels are
        # quality 1 here, which makes QFL focal loss without alpha (FocalLoss's alpha 0.25 is not kept).
        initial_loss_cls=dict(
            _delete_=True,
            type='AsymmetricQualityFocalLoss',
            use_sigmoid=True,
            activated=True,  # TOOD's head outputs probabilities
            gamma_pos=1.0,
            gamma_neg=2.0,
            clip=0.0,
            loss_weight=1.0),
        # Then QualityFocalLoss with the task-alignment metric as quality.
        loss_cls=dict(
            _delete_=True,
            type='AsymmetricQualityFocalLoss',
            use_sigmoid=True,
            activated=True,
            gamma_pos=1.0,
            gamma_neg=2.0,
            clip=0.0,
            loss_weight=1.0)))

# The demo (README's first command): FCOS + small TResNet from scratch on the DeepForest tiles, with the
# Asymmetric Loss for classification (gamma+ = 1, gamma- = 2 as in the ASL paper's detection setup).
# m = 0 (clip=0.0), as in configs/fcos_tresnetm_asl.py (why: docs/detection.md). Everything else is
# fcos_tresnet_focal_deepforest.py.
#   bash tools/run_detection_demo.sh
_base_ = './fcos_tresnet_focal_deepforest.py'

model = dict(
    bbox_head=dict(
        loss_cls=dict(
            _delete_=True,
            type='AsymmetricLoss',
            use_sigmoid=True,
            gamma_pos=1.0,
            gamma_neg=2.0,
            clip=0.0,
            loss_weight=1.0)))

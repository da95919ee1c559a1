# From-scratch baseline (the main job fine-tunes: fcos_effnet-lite0_asl_deepforest.py): FCOS + small TResNet
# from random weights on the DeepForest tiles, with the Asymmetric Loss (gamma+ = 1, gamma- = 2, as in the
# ASL paper's detection setup). Small and quick: the end-to-end tests train it.
# m = 0 (clip=0.0), as in configs/fcos_tresnetm_asl.py (why: docs/detection.md). Everything else is
# fcos_tresnet_focal_deepforest.py.
#   bash tools/run_detection_demo.sh configs/demo/fcos_tresnet_asl_deepforest.py
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

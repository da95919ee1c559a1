# configs/fcos_tresnetm_focal.py with the Asymmetric Loss as loss_cls (paper appendix I: gamma+ = 1, gamma- = 2).
# m (clip) = 0: with FCOS's 0.01 class prior, m = 0.05 would silence every negative at initialisation (Eq. 5).
# Results and recipe: configs/fcos/README.md.
_base_ = './fcos_tresnetm_focal.py'

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

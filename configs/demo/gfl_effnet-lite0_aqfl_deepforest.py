# gfl_effnet-lite0_qfl_deepforest.py with AsymmetricQualityFocalLoss in place of QualityFocalLoss: the positive
# slot keeps QFL's term (gamma+ = beta = 2), the negatives are focused harder (gamma- = 4, no margin: GFL's
# 0.01 class prior would put every negative under a margin at initialisation, Eq. 5).
_base_ = './gfl_effnet-lite0_qfl_deepforest.py'

model = dict(
    bbox_head=dict(
        loss_cls=dict(
            _delete_=True, type='AsymmetricQualityFocalLoss', use_sigmoid=True, gamma_pos=2.0, gamma_neg=4.0,
            clip=0.0, loss_weight=1.0)))

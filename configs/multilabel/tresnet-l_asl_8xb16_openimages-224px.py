# Open Images, stage 1 of appendix G's schedule: 30 epochs at 224 px; stage 2 is
# tresnet-l_asl_8xb16_openimages-448px.py (5 epochs at 448 px from this run's last checkpoint).
# Partial labels: untagged = negative with weight `untagged_weight` (see _base_/datasets/openimages_448.py).
_base_ = [
    './_base_/models/tresnet-l.py', './_base_/datasets/openimages_224.py',
    './_base_/schedules/adam_onecycle_60e.py', './_base_/default_runtime.py'
]
model = dict(head=dict(type='WeightedMultiLabelLinearClsHead', num_classes={{_base_.num_classes}},
                       loss=dict(gamma_neg=7.0)))  # ASL gamma- = 7 on Open Images (appendix G)
train_cfg = dict(max_epochs=30)

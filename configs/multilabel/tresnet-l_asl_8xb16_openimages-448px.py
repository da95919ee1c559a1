# Open Images with partial labels (appendix G): untagged labels are negatives with a reduced weight, which
# reaches the loss through WeightedMultiLabelLinearClsHead; ASL gamma- = 7 (gamma+ 0, m 0.05).
_base_ = [
    './_base_/models/tresnet-l.py', './_base_/datasets/openimages_448.py',
    './_base_/schedules/adam_onecycle_60e.py', './_base_/default_runtime.py'
]
model = dict(head=dict(type='WeightedMultiLabelLinearClsHead', num_classes={{_base_.num_classes}},
                       loss=dict(gamma_neg=7.0)))

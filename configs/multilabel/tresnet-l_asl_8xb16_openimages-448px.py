# Open Images, stage 2 of appendix G's schedule: 5 epochs at 448 px, starting from the last checkpoint of
# stage 1 (tresnet-l_asl_8xb16_openimages-224px.py, 30 epochs at 224 px). The paper gives no stage-2 learning
# rate; this reuses the 1-cycle policy (max lr 2e-4) over the 5 epochs.
_base_ = [
    './_base_/models/tresnet-l.py', './_base_/datasets/openimages_448.py',
    './_base_/schedules/adam_onecycle_60e.py', './_base_/default_runtime.py'
]
model = dict(head=dict(type='WeightedMultiLabelLinearClsHead', num_classes={{_base_.num_classes}},
                       loss=dict(gamma_neg=7.0)))  # ASL gamma- = 7 on Open Images (appendix G)
train_cfg = dict(max_epochs=5)
load_from = 'work_dirs/tresnet-l_asl_8xb16_openimages-224px/epoch_30.pth'

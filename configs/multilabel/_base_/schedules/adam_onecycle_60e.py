# The paper's recipe (appendix B): Adam, 1-cycle policy with max lr 2e-4, 60 epochs, weight decay 1e-4.
# (The official train.py: lr 1e-4, OneCycleLR over 80 epochs with pct_start 0.2, stopped after epoch 40.)
#
# Weight decay: the official code applies Adam's L2 decay 1e-4 (0 for biases and norm layers) to a loss
# *summed* over its batch of 128, while MMPretrain's heads average the loss over the batch. Adam is invariant
# to the loss scale, so decay 1e-4 / 128 on the averaged loss reproduces the official update.
total_batch_size = 128
optim_wrapper = dict(
    optimizer=dict(type='Adam', lr=2e-4, weight_decay=1e-4 / total_batch_size),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='OneCycleLR', eta_max=2e-4, pct_start=0.2, by_epoch=True, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=60, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=total_batch_size)

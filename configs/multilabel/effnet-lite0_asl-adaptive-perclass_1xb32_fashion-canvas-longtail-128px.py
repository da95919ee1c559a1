# Pretrained features on long-tailed classes: the EfficientNet-Lite0 multi-label recipe
# (effnet-lite0_asl_1xb32_fashion-canvas-128px.py) on the long-tailed canvases at 128 px, with gamma- and the
# margin m of ASL adapted per class towards Delta p = 0.1 (ProbabilityGapHook, per-class mode; docs/analysis.md).
#   python tools/dataset_converters/make_longtail_canvases.py --size 128 --scale-range 1.2 2.2 \
#       --out data/fashion_canvas_longtail_128
#   python tools/analysis_tools/experiment_longtail.py --model effnet-lite0 --epochs 6 --seeds 0 1 2
_base_ = './effnet-lite0_asl_1xb32_fashion-canvas-128px.py'
data_root = 'data/fashion_canvas_longtail_128/'
# all 2000 train and 1000 test canvases (63 iterations of 32 an epoch)
train_dataloader = dict(dataset=dict(data_root=data_root, indices=None))
val_dataloader = dict(dataset=dict(data_root=data_root, indices=None))
test_dataloader = val_dataloader
# Long enough for every loss to stop improving on this data (learning curves: docs/analysis.md).
train_cfg = dict(max_epochs=6, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=6))
custom_hooks = [
    dict(type='ProbabilityGapHook',
         adaptive=dict(target=0.1, lam=0.05, per_class=True, adapt=('gamma_neg', 'clip'), clip_lam=0.005))
]

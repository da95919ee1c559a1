# CPU demo on long-tailed canvases (tools/dataset_converters/make_longtail_canvases.py): ASL with gamma- and the
# margin m adapted per class towards Delta p = 0.1 (ProbabilityGapHook, per-class mode; docs/analysis.md).
_base_ = './resnet18-w16_asl_1xb64_fashion-canvas.py'
data_root = 'data/fashion_canvas_longtail/'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
custom_hooks = [
    dict(type='ProbabilityGapHook',
         adaptive=dict(target=0.1, lam=0.05, per_class=True, adapt=('gamma_neg', 'clip'), clip_lam=0.005))
]

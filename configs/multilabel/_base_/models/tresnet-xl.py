# TResNet-XL (timm 'tresnet_xl', 2656 features), otherwise as tresnet-l.py.
_base_ = ['./tresnet-l.py']
model = dict(backbone=dict(model_name='tresnet_xl'), head=dict(in_channels=2656))

"""TResNet backbone: shapes, out_indices, frozen_stages, norm_eval, and loading timm / official checkpoints
(made on the fly; nothing is downloaded)."""
import re

import pytest
import timm
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import MODELS

import mmdet_asl  # noqa: F401
from mmdet_asl.models.backbones import TResNet, convert_tresnet_state_dict

SMALL = dict(layers=[1, 1, 1, 1], width_factor=0.25)


def small(**kwargs):
    return TResNet(arch='tresnet_m', model_kwargs=SMALL, **kwargs)


@pytest.mark.parametrize('arch,channels', [('tresnet_m', (64, 128, 1024, 2048)),
                                           ('tresnet_l', (76, 152, 1216, 2432)),
                                           ('tresnet_xl', (83, 166, 1328, 2656))])
def test_channels_and_strides(arch, channels):
    model = MODELS.build(dict(type='TResNet', arch=arch))
    assert model.stage_channels == channels
    if arch != 'tresnet_m':
        return  # the bigger ones: channel bookkeeping only (forward is the same code)
    model.eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(1, c, 64 // s, 96 // s) for c, s in zip(channels, (4, 8, 16, 32))]


def test_out_indices_subset():
    model = small(out_indices=(1, 3)).eval()
    outs = model(torch.rand(2, 3, 64, 64))
    assert model.out_channels == (32, 512)
    assert [o.shape[1] for o in outs] == [32, 512] and outs[0].shape[-1] == 8 and outs[1].shape[-1] == 2
    with pytest.raises(ValueError):
        small(out_indices=(4, ))
    with pytest.raises(ValueError):
        TResNet(arch='resnet50')


def test_frozen_stages_and_norm_eval():
    model = small(frozen_stages=2)
    model.train()
    frozen = [model.body.conv1, model.body.layer1, model.body.layer2]
    for mod in frozen:
        assert all(not p.requires_grad for p in mod.parameters())
        assert all(not m.training for m in mod.modules())
    for mod in (model.body.layer3, model.body.layer4):
        assert all(p.requires_grad for p in mod.parameters())
        assert all(m.training for m in mod.modules() if isinstance(m, _BatchNorm))
    # frozen params get no gradient; the trainable ones do
    sum(o.mean() for o in model(torch.rand(2, 3, 64, 64))).backward()
    assert model.body.layer1[0].conv1.conv.weight.grad is None
    assert model.body.layer4[0].conv1.conv.weight.grad is not None

    model = small(norm_eval=True)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and all(not m.training for m in bns)
    before = bns[0].running_mean.clone()
    model(torch.rand(2, 3, 64, 64))
    assert torch.equal(before, bns[0].running_mean)  # statistics untouched
    assert all(p.requires_grad for p in model.parameters())


def _randomise(model):
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                if name.endswith('running_var') or name.endswith('bn.weight'):
                    t.copy_(torch.rand_like(t) + 0.5)
                else:
                    t.copy_(torch.randn_like(t) * 0.1)
    return model


def _timm_reference(x):
    ref = _randomise(timm.create_model('tresnet_m', num_classes=10, **SMALL)).eval()
    feats = ref.forward_intermediates(x, indices=[1, 2, 3, 4], intermediates_only=True)
    return ref, feats


def _assert_same(model, feats, x):
    model.eval()
    with torch.no_grad():
        outs = model(x)
    for o, f in zip(outs, feats):
        torch.testing.assert_close(o, f)


def test_load_timm_checkpoint(tmp_path):
    x = torch.rand(1, 3, 64, 64)
    ref, feats = _timm_reference(x)
    path = tmp_path / 'tresnet_timm.pth'
    torch.save(ref.state_dict(), path)  # timm's layout, classifier included
    model = MODELS.build(dict(type='TResNet', model_kwargs=SMALL,
                              init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    model.init_weights()
    _assert_same(model, feats, x)


def to_official(state_dict):
    """timm names -> the official MIIL/ASL repository names (InPlaceABN, nn.Sequential indices)."""
    out = {}
    for k, v in state_dict.items():
        if k.endswith('num_batches_tracked'):
            continue
        aa = re.search(r'layer\d\.0\.conv2\.', k) and not k.startswith('body.layer1')  # stride-2 conv + AA
        if aa:
            k = k.replace('conv2.conv.', 'conv2.0.0.').replace('conv2.bn.', 'conv2.0.1.')
        k = re.sub(r'(conv\d)\.conv\.', r'\1.0.', k)
        k = re.sub(r'(conv\d)\.bn\.', r'\1.1.', k)
        k = re.sub(r'downsample\.(\d)\.conv\.', r'downsample.\1.0.', k)
        k = re.sub(r'downsample\.(\d)\.bn\.', r'downsample.\1.1.', k)
        if re.search(r'(conv\d(\.0)?|downsample\.\d)\.1\.weight$', k):
            v = v - 1e-5  # InPlaceABN stores w; timm's filter takes |w| + 1e-5
        out['module.' + k] = v
    return out


def test_load_official_checkpoint(tmp_path):
    x = torch.rand(1, 3, 64, 64)
    ref, feats = _timm_reference(x)
    official = to_official(ref.state_dict())
    assert 'module.body.conv1.0.weight' in official and 'module.body.layer2.0.conv2.0.1.weight' in official
    path = tmp_path / 'MS_COCO_TResNet_official.pth'
    torch.save({'model': official, 'epoch': 3}, path)
    converted = convert_tresnet_state_dict(torch.load(path))
    assert 'body.conv1.conv.weight' in converted and not any(k.startswith('head.') for k in converted)
    model = small(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    _assert_same(model, feats, x)


def test_load_from_detector_checkpoint_with_prefix(tmp_path):
    x = torch.rand(1, 3, 64, 64)
    ref, feats = _timm_reference(x)
    det = {'state_dict': {'backbone.' + k: v for k, v in ref.state_dict().items() if not k.startswith('head')}}
    det['state_dict']['neck.conv.weight'] = torch.zeros(1)
    path = tmp_path / 'detector.pth'
    torch.save(det, path)
    model = small(init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix='backbone.'))
    model.init_weights()
    _assert_same(model, feats, x)


def test_load_wrong_checkpoint_raises(tmp_path):
    path = tmp_path / 'other.pth'
    torch.save({'state_dict': {'foo.weight': torch.zeros(2)}}, path)
    with pytest.raises(RuntimeError, match='no TResNet weight'):
        small(init_cfg=dict(type='Pretrained', checkpoint=str(path))).init_weights()

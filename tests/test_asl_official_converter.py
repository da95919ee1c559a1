"""tools/model_converters/asl_official_to_mmpretrain.py on checkpoints in the official ASL layout.

The source model below is a TResNet built like the official repository's (same module tree, so the same
state-dict keys and shapes; InPlaceABN computed as BatchNorm with |weight| + eps then its activation; blur
downsampling with reflect padding; space-to-depth by 4). Random weights and BN statistics; the converted
MMPretrain classifier must give the same logits.
"""
import os.path as osp
import sys
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope
from torch import nn

from mmpretrain.registry import MODELS

import mmdet_asl  # noqa: F401

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'tools', 'model_converters'))
import asl_official_to_mmpretrain as conv  # noqa: E402

LAYERS = {'M': ([3, 4, 11, 3], 1.0), 'L': ([4, 5, 18, 3], 1.2), 'XL': ([4, 5, 24, 3], 1.3)}


class InPlaceABN(nn.Module):
    def __init__(self, c, activation='leaky_relu', slope=1e-2, eps=1e-5):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(c)), nn.Parameter(torch.zeros(c))
        self.register_buffer('running_mean', torch.zeros(c))
        self.register_buffer('running_var', torch.ones(c))
        self.activation, self.slope, self.eps = activation, slope, eps

    def forward(self, x):
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight.abs() + self.eps, self.bias, False,
                         0.0, self.eps)
        return F.leaky_relu(x, self.slope) if self.activation == 'leaky_relu' else x


def conv_abn(ni, nf, stride=1, activation='leaky_relu', kernel_size=3, slope=1e-2):
    return nn.Sequential(nn.Conv2d(ni, nf, kernel_size, stride, kernel_size // 2, bias=False),
                         InPlaceABN(nf, activation, slope))


class Blur(nn.Module):
    def __init__(self, channels):
        super().__init__()
        a = torch.tensor([1., 2., 1.])
        self.register_buffer('filt', ((a[:, None] * a[None]) / 16).expand(channels, 1, 3, 3).clone(), False)

    def forward(self, x):
        return F.conv2d(F.pad(x, (1, 1, 1, 1), 'reflect'), self.filt, stride=2, groups=x.shape[1])


class SE(nn.Module):
    def __init__(self, c, r):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, r, 1), nn.Conv2d(r, c, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True)))))


class Block(nn.Module):
    def __init__(self, bottleneck, inplanes, planes, stride, downsample, use_se):
        super().__init__()
        self.bottleneck, self.downsample = bottleneck, downsample
        out = planes * (4 if bottleneck else 1)
        strided = (lambda m: nn.Sequential(m, Blur(planes))) if stride == 2 else (lambda m: m)
        if bottleneck:
            self.conv1 = conv_abn(inplanes, planes, kernel_size=1, slope=1e-3)
            self.conv2 = strided(conv_abn(planes, planes, slope=1e-3))
            self.conv3 = conv_abn(planes, out, kernel_size=1, activation='identity')
            self.se = SE(planes, max(out // 8, 64)) if use_se else None
        else:
            self.conv1 = strided(conv_abn(inplanes, planes, slope=1e-3))
            self.conv2 = conv_abn(planes, planes, activation='identity')
            self.se = SE(out, max(out // 4, 64)) if use_se else None

    def forward(self, x):
        residual = self.downsample(x) if self.downsample is not None else x
        out = self.conv2(self.conv1(x))
        if self.bottleneck:
            out = self.conv3(self.se(out) if self.se is not None else out)
        elif self.se is not None:
            out = self.se(out)
        return F.relu(out + residual)


class OfficialTResNet(nn.Module):
    def __init__(self, variant, num_classes, bottleneck_head=False):
        super().__init__()
        layers, wf = LAYERS[variant]
        self.inplanes = planes = int(64 * wf)
        body = [('SpaceToDepth', nn.PixelUnshuffle(4)), ('conv1', conv_abn(48, planes))]
        for i, (n, mult, bott, se) in enumerate(zip(layers, (1, 2, 4, 8), (0, 0, 1, 1), (1, 1, 1, 0))):
            body.append((f'layer{i + 1}', self._layer(bool(bott), planes * mult, n, 1 if i == 0 else 2, bool(se))))
        self.body = nn.Sequential(OrderedDict(body))
        features = planes * 8 * 4
        if bottleneck_head:
            fc = nn.Module()
            fc.embedding_generator = nn.Sequential(nn.Linear(features, 32))
            fc.FC = nn.Linear(32, num_classes)
            fc.forward = lambda x: fc.FC(fc.embedding_generator(x))
        else:
            fc = nn.Linear(features, num_classes)
        self.head = nn.Sequential(OrderedDict([('fc', fc)]))

    def _layer(self, bottleneck, planes, blocks, stride, use_se):
        out = planes * (4 if bottleneck else 1)
        downsample = None
        if stride != 1 or self.inplanes != out:
            pool = [nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)] if stride == 2 else []
            downsample = nn.Sequential(*pool, conv_abn(self.inplanes, out, kernel_size=1, activation='identity'))
        mods = [Block(bottleneck, self.inplanes, planes, stride, downsample, use_se)]
        self.inplanes = out
        mods += [Block(bottleneck, out, planes, 1, None, use_se) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def forward(self, x):
        # PixelUnshuffle orders channels (C, 4, 4); the official space-to-depth orders them (4, 4, C)
        n, _, h, w = x.shape
        x = x.view(n, 3, h // 4, 4, w // 4, 4).permute(0, 3, 5, 1, 2, 4).reshape(n, 48, h // 4, w // 4)
        for name, m in self.body.named_children():
            x = x if name == 'SpaceToDepth' else m(x)
        return self.head(x.mean((2, 3)))


def _randomised(model):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                if name.endswith('running_var'):
                    t.copy_(torch.rand(t.shape, generator=g) + 0.5)
                elif name.endswith(('1.weight', 'running_mean', 'bias')) and t.dim() == 1:
                    # InPlaceABN weights of both signs: the conversion must apply |w| + eps
                    t.copy_(torch.randn(t.shape, generator=g) * 0.5 + (0.3 if name.endswith('weight') else 0.0))
                else:
                    t.copy_(torch.randn(t.shape, generator=g) * (2.0 / max(t[0].numel(), 1)) ** 0.5)
    return model.eval()


def _ours(model_name, width, num_classes):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'multilabel', 'tresnet-l_asl_8xb16_coco14-448px.py'))
    init_default_scope('mmpretrain')
    cfg.model.backbone.model_name = model_name
    cfg.model.head.update(in_channels=width, num_classes=num_classes)
    return MODELS.build(cfg.model).eval()


@pytest.mark.parametrize('bottleneck_head', [False, True], ids=['linear-head', 'bottleneck-head'])
def test_converted_tresnet_m_gives_the_source_logits(bottleneck_head, tmp_path):
    src = _randomised(OfficialTResNet('M', num_classes=5, bottleneck_head=bottleneck_head))
    path = tmp_path / 'official.pth'
    torch.save({'model': src.state_dict(), 'idx_to_class': {0: 'a', 1: 'b', 2: 'c', 3: 'd', 4: 'e'}}, path)
    assert conv.main([str(path), str(tmp_path / 'ours.pth')]) == 0
    ckpt = torch.load(tmp_path / 'ours.pth', weights_only=True)
    assert ckpt['meta']['dataset_meta']['classes'] == ['a', 'b', 'c', 'd', 'e']
    ours = _ours('tresnet_m', 2048, 5)
    ours.load_state_dict(ckpt['state_dict'], strict=True)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = src(x), ours(x, mode='tensor')
    assert expected.abs().max() > 0.1  # a non-trivial output
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('variant,name,width', [('L', 'tresnet_l', 2432), ('XL', 'tresnet_xl', 2656)])
def test_variant_detection_and_key_layout(variant, name, width):
    with torch.device('meta'):
        state = OfficialTResNet(variant, num_classes=3).state_dict()
        out, model_name, got_width = conv.convert({'model': state})
        ours = _ours(name, width, 3)
    assert (model_name, got_width) == (name, width)
    expected = {k: v.shape for k, v in ours.state_dict().items()}
    assert {k: v.shape for k, v in out['state_dict'].items()} == expected


def test_bad_checkpoints():
    with pytest.raises(KeyError, match='body.conv1.0.weight'):
        conv.convert({'model': {'fc.weight': torch.zeros(2, 2)}})
    state = OfficialTResNet('M', num_classes=2).state_dict()
    del state['head.fc.weight']
    with pytest.raises(KeyError, match='no classifier'):
        conv.convert(state)

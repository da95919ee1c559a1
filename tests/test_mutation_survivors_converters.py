"""Behaviours of the EfficientNet-PyTorch -> timm converter (mmdet_asl/models/backbones/efficientnet_lite_convert.py)
that mutation testing showed unchecked: each refusal's message, the layout test, and what ``load_source``
accepts. The source state dicts are built from a timm model by an inverse name map written here on its own."""
import re

import pytest
import timm
import torch
from torch import nn

from mmdet_asl.models.backbones.efficientnet_lite_convert import (
    block_name_map,
    convert_efficientnet_pytorch,
    is_efficientnet_pytorch_layout,
    load_source,
)

# timm name -> EfficientNet-PyTorch name, per block kind (the inverse of the converter's tables).
SEPARABLE = {'conv_dw': '_depthwise_conv', 'bn1': '_bn1', 'conv_pw': '_project_conv', 'bn2': '_bn2'}
INVERTED = {'conv_pw': '_expand_conv', 'bn1': '_bn0', 'conv_dw': '_depthwise_conv', 'bn2': '_bn1',
            'conv_pwl': '_project_conv', 'bn3': '_bn2'}
OUTER = {'conv_stem': '_conv_stem', 'bn1': '_bn0', 'conv_head': '_conv_head', 'bn2': '_bn1', 'classifier': '_fc'}


@pytest.fixture(scope='module')
def model():
    return timm.create_model('tf_efficientnet_lite0', pretrained=False)


def source_of(model):
    """An EfficientNet-PyTorch state dict holding ``model``'s tensors (blocks numbered in execution order)."""
    kinds, index = {}, 0
    for s, stage in enumerate(model.blocks):
        for j, block in enumerate(stage):
            kinds[f'blocks.{s}.{j}'] = (index, type(block).__name__ == 'InvertedResidual')
            index += 1
    source = {}
    for key, value in model.state_dict().items():
        parts = key.split('.')
        if parts[0] == 'blocks':
            i, inverted = kinds['.'.join(parts[:3])]
            module = (INVERTED if inverted else SEPARABLE)[parts[3]]
            source[f'_blocks.{i}.{module}.{".".join(parts[4:])}'] = value.clone()
        else:
            source[f'{OUTER[parts[0]]}.{".".join(parts[1:])}'] = value.clone()
    return source


def test_the_inverse_map_converts_back(model):
    converted = convert_efficientnet_pytorch(source_of(model), model)
    assert list(converted) == list(model.state_dict())


def test_missing_module_is_named_with_its_target(model):
    source = {k: v for k, v in source_of(model).items() if not k.startswith('_bn0.')}
    with pytest.raises(KeyError, match=re.escape('source checkpoint has no tensor _bn0.* (expected for bn1)')):
        block_name_map(source, model)


def test_block_count_mismatch_is_named(model):
    last = max(int(k.split('.')[1]) for k in source_of(model) if k.startswith('_blocks.'))
    source = {k: v for k, v in source_of(model).items() if not k.startswith(f'_blocks.{last}.')}
    with pytest.raises(KeyError, match=re.escape(f'source checkpoint has {last} blocks, timm model {last + 1}: '
                                                 'another variant?')):
        block_name_map(source, model)


def test_expansion_mismatch_names_the_block_and_its_timm_type(model):
    source = source_of(model)
    source['_blocks.0._expand_conv.weight'] = torch.zeros(1)  # block 0 of Lite0 has no expansion
    with pytest.raises(KeyError, match=re.escape('_blocks.0 (expand conv: True) does not fit blocks.0.0 '
                                                 '(DepthwiseSeparableConv)')):
        block_name_map(source, model)


def test_left_over_source_tensors_alone_are_refused_and_listed_by_five(model):
    source = source_of(model)
    extra = [f'extra_{i}.weight' for i in range(6)]
    for name in extra:
        source[name] = torch.zeros(1)
    with pytest.raises(KeyError) as error:
        convert_efficientnet_pytorch(source, model)
    expected = f'unmapped source tensors {sorted(extra)[:5]} (6), unfilled timm tensors [] (0)'
    assert str(error.value).strip('"\'') == expected


def test_unfilled_timm_tensors_alone_are_refused_and_listed_by_five(model):
    class Wider(nn.Module):
        def __init__(self, base):
            super().__init__()
            self.conv_stem, self.bn1, self.blocks = base.conv_stem, base.bn1, base.blocks
            self.conv_head, self.bn2, self.classifier = base.conv_head, base.bn2, base.classifier
            for i in range(6):
                self.register_buffer(f'zz_{i}', torch.zeros(1))

    wider = Wider(model)
    with pytest.raises(KeyError) as error:
        convert_efficientnet_pytorch(source_of(model), wider)
    names = sorted(f'zz_{i}' for i in range(6))
    assert str(error.value).strip('"\'') == f'unmapped source tensors [] (0), unfilled timm tensors {names[:5]} (6)'


@pytest.mark.parametrize('keys,expected', [
    (('_conv_stem.weight', '_blocks.0._bn1.weight'), True),
    (('_conv_stem.weight', ), False),  # a stem without blocks
    (('_blocks.0._bn1.weight', ), False),  # blocks without a stem
    (('conv_stem.weight', 'blocks.0.0.bn1.weight'), False),  # timm's own names
])
def test_layout_needs_both_the_stem_and_blocks(keys, expected):
    assert is_efficientnet_pytorch_layout({k: torch.zeros(1) for k in keys}) is expected


@pytest.mark.parametrize('wrapper', ['state_dict', 'model', None])
def test_load_source_unwraps_state_dict_and_model(tmp_path, model, wrapper):
    source = source_of(model)
    path = tmp_path / 'src.pth'
    torch.save(source if wrapper is None else {wrapper: source, 'meta': {'epoch': 1}}, path)
    loaded = load_source(str(path))
    assert list(loaded) == list(source) and all(torch.equal(loaded[k], source[k]) for k in source)


def test_load_source_names_the_first_three_non_tensors(tmp_path):
    state = {'_conv_stem.weight': torch.zeros(1), '_blocks.0._bn1.weight': torch.zeros(1)}
    state.update({f'note_{i}': i for i in range(4)})
    path = tmp_path / 'src.pth'
    torch.save(state, path)
    with pytest.raises(ValueError) as error:
        load_source(str(path))
    assert str(error.value) == (f"{path}: ['note_0', 'note_1', 'note_2'] (4 entries) are not tensors; expected a "
                                'state dict of tensors')


class RunsCode:
    def __reduce__(self):
        return (print, ('unpickled code ran', ))


def test_load_source_stays_weights_only_when_the_environment_asks_otherwise(tmp_path, monkeypatch, capsys):
    """TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD turns a torch.load without an explicit weights_only into full
    unpickling; the converter passes weights_only=True, which the variable does not override."""
    path = tmp_path / 'evil.pth'
    torch.save({'_conv_stem.weight': torch.zeros(1), 'x': RunsCode()}, path)
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    with pytest.raises(ValueError, match='is not a readable PyTorch checkpoint'):
        load_source(str(path))
    assert 'unpickled code ran' not in capsys.readouterr().out

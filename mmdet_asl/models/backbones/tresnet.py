"""TResNet (Ridnik et al., WACV 2021) as an MMDetection backbone, wrapping timm's implementation.

The ASL paper's detection experiments use a TResNet-M backbone in FCOS. timm ships the network
(``timm.models.tresnet``); this wrapper builds timm's *classification* model (not ``features_only``, so the
module names stay ``body.layer1`` ... as in timm's and the official checkpoints), drops the classifier and
returns the multi-scale features MMDetection's necks expect, with MMDetection's ``out_indices``,
``frozen_stages`` and ``norm_eval``.

Weights come from a local file through ``init_cfg=dict(type='Pretrained', checkpoint=PATH)``. Both layouts
load:

* timm's (``body.conv1.conv.weight``, ``body.layer1.0.conv1.bn.weight``, ...), e.g. a file saved from
  ``timm.create_model('tresnet_m', pretrained=True).state_dict()``;
* the official MIIL / ASL repositories' (``body.conv1.0.weight`` with InPlaceABN ``body.conv1.1.*``,
  optionally wrapped in ``{'model': ...}`` or ``{'state_dict': ...}``, e.g.
  ``MS_COCO_TRresNet_L_448_86.6.pth``); the names and the InPlaceABN weights are converted by timm's own
  ``checkpoint_filter_fn``.

A ``prefix`` in ``init_cfg`` (e.g. ``'backbone.'`` to take the backbone out of a detector checkpoint) selects
and strips a key prefix, as MMEngine's ``PretrainedInit`` does. Nothing is ever downloaded.

Preprocessing: TResNet is trained on RGB in [0, 1] without mean/std normalisation, so pair it with
``DetDataPreprocessor(mean=[0, 0, 0], std=[255, 255, 255], bgr_to_rgb=True)``; inputs must have sides
divisible by 4 (SpaceToDepth), which ``pad_size_divisor=32`` guarantees.

Stage indices follow MMDetection's ResNet: ``out_indices`` 0..3 are ``layer1``..``layer4`` at strides
4, 8, 16, 32 (timm's feature indices 1..4). Channels: TResNet-M 64, 128, 1024, 2048; TResNet-L 76, 152,
1216, 2432; TResNet-XL 83, 166, 1328, 2656 (see :attr:`TResNet.out_channels`).
"""
import re
from collections import OrderedDict
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader
from torch import Tensor

from mmdet.registry import MODELS

from .frozen_stages import FrozenStagesBackbone

ARCHS = ('tresnet_m', 'tresnet_l', 'tresnet_xl', 'tresnet_v2_l')
STAGES = ('layer1', 'layer2', 'layer3', 'layer4')


def _strip_prefix(state_dict: Dict[str, Tensor], prefix: str) -> Dict[str, Tensor]:
    if not prefix:
        return state_dict
    if not prefix.endswith('.'):
        prefix += '.'
    out = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not out:
        raise KeyError(f'no key of the checkpoint starts with prefix {prefix!r}')
    return out


def convert_tresnet_state_dict(checkpoint, model: torch.nn.Module = None) -> Dict[str, Tensor]:
    """Return a timm-layout TResNet state dict (``body.*`` keys) from a timm or official MIIL/ASL checkpoint.

    Unwraps ``{'state_dict': ...}``, ``{'model': ...}`` (the official repositories), ``{'state_dict_ema':
    ...}`` is ignored in favour of the plain weights; strips ``module.`` (DataParallel) prefixes; renames
    official InPlaceABN layers with timm's ``checkpoint_filter_fn``; drops the classifier ``head.*``.
    """
    from timm.models.tresnet import checkpoint_filter_fn
    state_dict = checkpoint
    for key in ('state_dict', 'model'):
        if isinstance(state_dict, dict) and key in state_dict and isinstance(state_dict[key], dict):
            state_dict = state_dict[key]
    if not isinstance(state_dict, dict):
        raise TypeError(f'cannot find a state dict in the checkpoint (got {type(state_dict).__name__})')
    state_dict = OrderedDict((re.sub(r'^module\.', '', k), v) for k, v in state_dict.items())
    state_dict = checkpoint_filter_fn(state_dict, model)
    return OrderedDict((k, v) for k, v in state_dict.items() if not k.startswith('head.'))


@MODELS.register_module()
class TResNet(FrozenStagesBackbone):
    """TResNet backbone (timm) with multi-scale outputs for MMDetection.

    Args:
        arch (str): timm model name: 'tresnet_m' (the ASL paper's detection backbone), 'tresnet_l',
            'tresnet_xl' or 'tresnet_v2_l'.
        out_indices (Sequence[int]): stages to output, 0..3 = layer1..layer4 (strides 4, 8, 16, 32).
        frozen_stages (int): -1 trains everything; 0 freezes the stem (SpaceToDepth + conv1); k >= 1 also
            freezes layer1..layer{k} (parameters without gradient, norms in eval mode), as MMDetection's ResNet.
        norm_eval (bool): keep every BatchNorm in eval mode (frozen running statistics) while training.
        drop_path_rate (float): stochastic depth, passed to timm.
        model_kwargs (dict, optional): other arguments of timm's ``TResNet`` (e.g. ``layers``,
            ``width_factor`` for a smaller network); they override the arch's defaults.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=PATH, prefix=None)`` loads a local
            timm or official checkpoint (see the module docstring); other init configs go to MMEngine.
    """

    def __init__(self,
                 arch: str = 'tresnet_m',
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 drop_path_rate: float = 0.0,
                 model_kwargs: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        import timm
        if arch not in ARCHS:
            raise ValueError(f'arch must be one of {ARCHS}, got {arch!r}')
        out_indices = tuple(out_indices)
        if not out_indices or any(not 0 <= i < len(STAGES) for i in out_indices):
            raise ValueError(f'out_indices must be a non-empty subset of 0..3, got {out_indices}')
        if not -1 <= frozen_stages <= len(STAGES):
            raise ValueError(f'frozen_stages must be in [-1, 4], got {frozen_stages}')
        self.arch = arch
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        # pretrained=False: never download; weights come from init_cfg.
        model = timm.create_model(arch, pretrained=False, num_classes=0, drop_path_rate=drop_path_rate,
                                  **(model_kwargs or {}))
        self.body = model.body  # s2d, conv1, layer1..layer4 (timm's names, so checkpoints match)
        info = {f['module']: f['num_chs'] for f in model.feature_info}
        self.stage_channels = tuple(info[f'body.{name}'] for name in STAGES)
        self.out_channels = tuple(self.stage_channels[i] for i in out_indices)
        del model
        self._freeze_stages()

    def _frozen_modules(self):
        if self.frozen_stages >= 0:
            yield self.body.s2d
            yield self.body.conv1
        for i in range(1, self.frozen_stages + 1):
            yield getattr(self.body, STAGES[i - 1])

    def load_pretrained(self, filename: str, prefix: Optional[str] = None) -> Tuple[list, list]:
        """Load a local timm/official TResNet checkpoint into the body; returns (missing, unexpected) keys."""
        checkpoint = CheckpointLoader.load_checkpoint(filename, map_location='cpu')
        if prefix:
            state_dict = checkpoint.get('state_dict', checkpoint.get('model', checkpoint))
            checkpoint = _strip_prefix(state_dict, prefix)
        state_dict = convert_tresnet_state_dict(checkpoint)
        # Parameters and persistent buffers only (BlurPool's filter is not persistent in timm).
        incompatible = self.load_state_dict(state_dict, strict=False)
        missing = [k for k in incompatible.missing_keys if not k.endswith('num_batches_tracked')]
        unexpected = list(incompatible.unexpected_keys)
        loaded = len(state_dict) - len(unexpected)
        print_log(f'TResNet({self.arch}): loaded {loaded} tensors from {filename}'
                  + (f'; missing {len(missing)}: {missing[:5]}' if missing else '')
                  + (f'; unexpected {len(unexpected)}: {unexpected[:5]}' if unexpected else ''),
                  logger='current')
        if loaded == 0:
            raise RuntimeError(f'no TResNet weight matched in {filename}; is it a TResNet checkpoint?')
        self._freeze_stages()  # load_state_dict keeps requires_grad, but be explicit
        return missing, unexpected

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        x = self.body.s2d(x)
        x = self.body.conv1(x)
        outs = []
        for i, name in enumerate(STAGES):
            x = getattr(self.body, name)(x)
            if i in self.out_indices:
                outs.append(x)
            if i >= max(self.out_indices):
                break
        return tuple(outs)

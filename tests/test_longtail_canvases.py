"""tools/dataset_converters/make_longtail_canvases.py: Zipf-like class frequency, real images, checked ratio."""
import json
import os.path as osp
import sys

import numpy as np
import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'tools', 'dataset_converters'))
import make_longtail_canvases as mlc  # noqa: E402


def test_class_probabilities_follow_zipf():
    order, probs = mlc.class_probabilities(10, 1.7, seed=0)
    assert sorted(order.tolist()) == list(range(10)) and probs.sum() == pytest.approx(1.0)
    ranked = probs[order]
    assert np.all(np.diff(ranked) < 0)
    assert ranked / ranked[0] == pytest.approx(1.0 / np.arange(1, 11) ** 1.7)
    assert ranked[0] / ranked[-1] == pytest.approx(10 ** 1.7)


def test_pool_draws_classes_with_the_given_frequency():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 50)
    probs = np.array([0.6, 0.25, 0.1, 0.05])
    pool = mlc.draw_pool(rng, labels, probs, 20000)
    freq = np.bincount(labels[pool], minlength=4) / len(pool)
    assert freq == pytest.approx(probs, abs=0.01)


def test_small_dataset_from_the_real_images(tmp_path):
    if not osp.isdir('/usr/share/datasets/fashion-mnist'):
        pytest.skip('Debian dataset-fashion-mnist is not installed (tools/install_system_deps.sh)')
    out = str(tmp_path / 'lt')
    assert mlc.main(['--out', out, '--num-train', '300', '--num-test', '200']) == 0
    coco = json.load(open(osp.join(out, 'annotations', 'instances_train.json')))
    counts = mlc.canvases_per_class(coco)
    assert len(coco['images']) == 300 and counts.max() >= 20 * counts.min() > 0
    assert mlc.main(['--out', out, '--num-train', '300', '--num-test', '200']) == 0  # up to date: no rewrite
    assert mlc.main(['--out', out, '--num-train', '30', '--num-test', '20', '--force', '--min-ratio', '1000']) == 1

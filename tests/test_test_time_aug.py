"""tools/test.py --tta (the demo configs' multi-scale flip test-time augmentation,
configs/demo/_base_/deepforest_tta.py): the flipped and the enlarged views' boxes are mapped back to the tile
before they are merged, and a config without TTA settings is refused by name."""
import os
import os.path as osp
import pickle
import shutil

import cv2
import numpy as np
import pytest
import torch

from test_detection_e2e import ROOT, data_options, deepforest_small, load_tool, seeded_random_model  # noqa: F401

CONFIG = osp.join(ROOT, 'configs', 'demo', 'fcos_effnet-lite0_asl_deepforest.py')
TILE = 400.0  # side of the deepforest_small tiles, in pixels


@pytest.fixture(scope='module')
def random_checkpoint(tmp_path_factory):
    """The demo model with seeded random weights (what the test compares is geometry, not accuracy)."""
    model = seeded_random_model(CONFIG)
    path = str(tmp_path_factory.mktemp('tta') / 'random.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return path


def predictions(tmp_path, name, ckpt, root, extra=(), config=CONFIG, options=()):
    out = str(tmp_path / f'{name}.pkl')
    load_tool('test').main([config, ckpt, '--work-dir', str(tmp_path / name), '--out', out, *extra,
                            '--cfg-options', *data_options(root), 'model.test_cfg.score_thr=0.0', *options])
    with open(out, 'rb') as f:
        return {osp.basename(p['img_path']): p['pred_instances'] for p in pickle.load(f)}


def single_view_tta_config(path, scale, flip):
    """A config that runs the demo's TTA merge on one view: ``scale`` px, flipped horizontally if ``flip``."""
    path.write_text(
        f"_base_ = {CONFIG!r}\n"
        "tta_pipeline = [dict(type='LoadImageFromFile'), dict(type='TestTimeAug', transforms=[\n"
        f"    [dict(type='Resize', scale=({scale}, {scale}), keep_ratio=True)],\n"
        f"    [dict(type='RandomFlip', prob={float(flip)}, direction='horizontal')],\n"
        "    [dict(type='LoadAnnotations', with_bbox=True)],\n"
        "    [dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',\n"
        "                                          'flip', 'flip_direction'))]])]\n")
    return str(path)


def mirrored_tiles(src_root, dst_root):
    """A copy of the val split with every tile flipped left-right (same file names and annotations)."""
    shutil.copytree(src_root, dst_root)
    folder = osp.join(dst_root, 'images', 'val')
    for name in sorted(os.listdir(folder)):
        path = osp.join(folder, name)
        cv2.imwrite(path, cv2.imread(path)[:, ::-1])
    return dst_root


def test_tta_maps_flipped_views_back(deepforest_small, random_checkpoint, tmp_path):  # noqa: F811
    """A horizontally flipped view of a mirrored tile is the original tile: its boxes, after the TTA's flip
    back, are the mirror images of the plain predictions on the original tile."""
    plain = predictions(tmp_path, 'plain', random_checkpoint, deepforest_small)
    mirror_root = mirrored_tiles(deepforest_small, str(tmp_path / 'mirrored'))
    hflip_only = single_view_tta_config(tmp_path / 'hflip_only.py', 320, flip=True)
    tta = predictions(tmp_path, 'tta_hflip', random_checkpoint, mirror_root, ['--tta'], hflip_only)
    assert plain.keys() == tta.keys() and plain
    for name, ref in plain.items():
        got = tta[name]
        assert len(got['bboxes']) == len(ref['bboxes']) > 0
        back = got['bboxes'].clone()
        back[:, [0, 2]] = TILE - got['bboxes'][:, [2, 0]]
        # the same boxes in the same score order (the merge's NMS keeps what the plain NMS kept)
        order_ref, order_got = ref['scores'].argsort(descending=True), got['scores'].argsort(descending=True)
        top = min(50, len(order_ref))
        torch.testing.assert_close(got['scores'][order_got[:top]], ref['scores'][order_ref[:top]], atol=2e-3,
                                   rtol=0)
        matched = torch.cdist(back[order_got[:top]], ref['bboxes']).min(1).values
        assert float(matched.median()) < 0.5, name
        unflipped = torch.cdist(got['bboxes'][order_got[:top]], ref['bboxes']).min(1).values
        assert float(unflipped.median()) > 2.0, name  # the check could tell a missing flip-back


def test_tta_enlarged_view_maps_back_to_the_tile(deepforest_small, random_checkpoint, tmp_path):  # noqa: F811
    """The 352 px view alone, through the TTA merge, gives the plain 352 px test's boxes in tile coordinates."""
    plain = predictions(tmp_path, 'plain352', random_checkpoint, deepforest_small,
                        options=['test_dataloader.dataset.pipeline.1.scale=(352,352)'])
    only_352 = single_view_tta_config(tmp_path / 'only_352.py', 352, flip=False)
    tta = predictions(tmp_path, 'tta352', random_checkpoint, deepforest_small, ['--tta'], only_352)
    assert plain.keys() == tta.keys() and plain
    for name, ref in plain.items():
        got = tta[name]
        order_ref, order_got = ref['scores'].argsort(descending=True), got['scores'].argsort(descending=True)
        top = min(50, len(order_ref))
        assert top > 0, name
        torch.testing.assert_close(got['bboxes'][order_got[:top]], ref['bboxes'][order_ref[:top]], atol=0.05,
                                   rtol=0)


def test_tta_all_views_stay_in_the_tile(deepforest_small, random_checkpoint, tmp_path):  # noqa: F811
    tta = predictions(tmp_path, 'tta', random_checkpoint, deepforest_small, ['--tta'])
    for name, pred in tta.items():
        boxes = pred['bboxes'].numpy()
        assert 0 < len(boxes) <= 300, name
        assert np.all(boxes >= -1e-3) and np.all(boxes <= TILE + 1e-3), name


def test_tta_without_settings_is_refused(random_checkpoint, tmp_path):
    config = tmp_path / 'no_tta.py'
    config.write_text(f"_base_ = {CONFIG!r}\ntta_model = None\n")
    with pytest.raises(SystemExit, match='no_tta.py: --tta needs tta_model and tta_pipeline'):
        load_tool('test').main([str(config), random_checkpoint, '--tta'])

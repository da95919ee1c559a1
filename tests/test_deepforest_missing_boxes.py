"""``prepare_deepforest.py --missing-rate``: train boxes removed at the requested rate from the real DeepForest
tiles, seeded and recorded, with the tiles and the val split untouched."""
import json
import os
import os.path as osp

import numpy as np
import pytest

from test_detection_e2e import CACHE, load_tool

prep = load_tool('dataset_converters/prepare_deepforest')


@pytest.fixture(scope='module')
def data_dir():
    try:
        wheel = prep.fetch_wheel(CACHE, prep.DEFAULT_VERSION)
    except Exception as exc:  # no registry reachable
        pytest.skip(f'cannot fetch the deepforest wheel: {exc}')
    return prep.extract_data(wheel, CACHE)


def convert(data_dir, out, rate, seed=0, max_tiles=None):
    prep.convert(data_dir, str(out), tile=400, min_visible=0.5, max_tiles=max_tiles, missing_rate=rate, seed=seed)
    return out


def load(out, name):
    with open(osp.join(out, 'annotations', name)) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def complete_and_part(data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp('df_missing')
    return convert(data_dir, root / 'r0', 0.0), convert(data_dir, root / 'r3', 0.3, seed=4)


def test_tiles_and_val_untouched_and_the_record_is_the_difference(complete_and_part):
    full, part = complete_and_part
    for split in ('train', 'val'):
        names = sorted(os.listdir(full / 'images' / split))
        assert names == sorted(os.listdir(part / 'images' / split))
        assert all((full / 'images' / split / n).read_bytes() == (part / 'images' / split / n).read_bytes()
                   for n in names)
    assert (full / 'annotations' / 'val.json').read_bytes() == (part / 'annotations' / 'val.json').read_bytes()
    assert not (full / 'annotations' / prep.REMOVED_FILE).exists()
    complete, kept = load(full, 'train.json'), load(part, 'train.json')
    record = load(part, prep.REMOVED_FILE)
    removed = {i for r in record['removed'] for i in r['annotation_ids']}
    assert [a for a in complete['annotations'] if a['id'] not in removed] == kept['annotations']
    assert (record['missing_rate'], record['missing_unit'], record['seed']) == (0.3, 'box', 4)
    assert (record['annotations_before'], record['annotations_after']) == (len(complete['annotations']),
                                                                            len(kept['annotations']))
    assert kept['info']['missing_rate'] == 0.3 and 'missing_rate' not in complete['info']
    # ignored partial boxes (iscrowd) are not positives: none removed
    crowd = [a for a in complete['annotations'] if a['iscrowd']]
    assert crowd and all(a['id'] not in removed for a in crowd)


def test_removals_follow_the_documented_generator_and_rate(complete_and_part):
    full, part = complete_and_part
    boxes = [a for a in load(full, 'train.json')['annotations'] if not a['iscrowd']]
    rng = np.random.default_rng(np.random.SeedSequence([4, int.from_bytes(b'missing', 'big')]))
    expected = [a['id'] for a, u in zip(boxes, rng.random(len(boxes))) if u < 0.3]
    got = [r['annotation_ids'][0] for r in load(part, prep.REMOVED_FILE)['removed']]
    assert got == expected
    n = len(boxes)  # a few hundred trees: the removed count is Binomial(n, 0.3)
    assert abs(len(got) - 0.3 * n) < 4 * (n * 0.3 * 0.7) ** 0.5


def test_a_smaller_rate_removes_a_subset_and_rate_zero_drops_the_record(data_dir, tmp_path):
    out = tmp_path / 'o'
    low = {r['annotation_ids'][0] for r in load(convert(data_dir, out, 0.1, max_tiles=(4, 2)),
                                                 prep.REMOVED_FILE)['removed']}
    high = {r['annotation_ids'][0] for r in load(convert(data_dir, out, 0.5, max_tiles=(4, 2)),
                                                  prep.REMOVED_FILE)['removed']}
    assert low and low < high
    convert(data_dir, out, 0.0, max_tiles=(4, 2))
    assert not (out / 'annotations' / prep.REMOVED_FILE).exists()


@pytest.mark.parametrize('value', ['1.0', '-0.1', 'nan'])
def test_missing_rate_outside_0_1_is_refused(value, capsys):
    with pytest.raises(SystemExit):
        prep.parse_args(['--missing-rate', value])
    assert '--missing-rate must be in [0, 1)' in capsys.readouterr().err
    with pytest.raises(ValueError, match='missing_rate must be in'):
        prep.convert('unused', 'unused', 400, 0.5, missing_rate=float(value))

"""The study axes of ``make_fashion_canvases.py``: missing train labels (``--missing-rate``) and the number of
classes a canvas can be labelled with (``--num-classes``, ``--classes``)."""
import filecmp
import gzip
import json
import math
import os
import os.path as osp
import struct
import sys

import numpy as np
import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'tools', 'dataset_converters'))
import make_fashion_canvases as mfc  # noqa: E402

PER_SPLIT = 60  # source images per split: 6 of each class


@pytest.fixture(scope='module')
def source(tmp_path_factory):
    """Four IDX files in Fashion-MNIST's layout: balanced labels, each image a noise rectangle of 8-16 px
    on black (small enough for several items to fit on a canvas)."""
    folder = tmp_path_factory.mktemp('fashion_src')
    rng = np.random.default_rng(123)
    labels = {}
    for split in ('train', 'test'):
        img_file, lbl_file = mfc.FILES[split]
        images = np.zeros((PER_SPLIT, 28, 28), dtype=np.uint8)
        for img in images:
            h, w = rng.integers(8, 17, size=2)
            y, x = rng.integers(0, 28 - h + 1), rng.integers(0, 28 - w + 1)
            img[y:y + h, x:x + w] = rng.integers(1, 256, size=(h, w))
        lbl = rng.permutation(np.arange(PER_SPLIT) % 10).astype(np.uint8)
        with gzip.open(folder / img_file, 'wb') as f:
            f.write(struct.pack('>IIII', 0x0803, PER_SPLIT, 28, 28) + images.tobytes())
        with gzip.open(folder / lbl_file, 'wb') as f:
            f.write(struct.pack('>II', 0x0801, PER_SPLIT) + lbl.tobytes())
        labels[split] = lbl
    mfc.load_split.cache_clear()
    yield str(folder), labels
    mfc.load_split.cache_clear()


def build(source, out, *extra, num_train=30, num_test=10):
    args = ['--src', source[0], '--out', str(out), '--num-train', str(num_train), '--num-test', str(num_test),
            ] + [str(e) for e in extra]
    assert mfc.main(args) == 0
    return out


def load(out, name):
    with open(osp.join(out, 'annotations', name)) as f:
        return json.load(f)


def same_tree(a, b):
    """Every file under a and b has the same name and bytes."""
    cmp = filecmp.dircmp(a, b)
    names = os.listdir(a)
    match, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    return not cmp.left_only and not cmp.right_only and not mismatch and not errors and len(match) == len(names)


@pytest.mark.parametrize('unit', ['label', 'box'])
def test_same_canvases_whatever_the_rate_and_records_match_the_diff(tmp_path, source, unit):
    # 3-4 items of 3 classes: most canvases hold a class twice, so a label and a box differ
    common = ('--num-classes', 3, '--min-items', 3, '--max-items', 4)
    full = build(source, tmp_path / 'r0', *common)
    part = build(source, tmp_path / 'r3', *common, '--missing-rate', 0.3, '--missing-unit', unit)
    # same images and the same test file, byte for byte
    assert same_tree(full / 'train', part / 'train') and same_tree(full / 'test', part / 'test')
    assert (full / 'annotations' / 'instances_test.json').read_bytes() == \
        (part / 'annotations' / 'instances_test.json').read_bytes()
    assert not (full / 'annotations' / mfc.REMOVED_FILE).exists()  # nothing removed at rate 0
    complete, kept = load(full, 'instances_train.json'), load(part, 'instances_train.json')
    record = load(part, mfc.REMOVED_FILE)
    assert (record['missing_rate'], record['missing_unit'], record['seed']) == (0.3, unit, 0)
    assert kept['images'] == complete['images'] and kept['categories'] == complete['categories']
    assert kept['info']['missing_rate'] == 0.3 and kept['info']['missing_unit'] == unit
    removed = [i for r in record['removed'] for i in r['annotation_ids']]
    assert removed and len(removed) == len(set(removed))
    # the train file is the complete one minus exactly the recorded annotations
    assert kept['annotations'] == [a for a in complete['annotations'] if a['id'] not in set(removed)]
    assert record['annotations_before'] - record['annotations_after'] == len(removed)
    by_id = {a['id']: a for a in complete['annotations']}
    assert sum(len(r['annotation_ids']) > 1 for r in record['removed']) >= (3 if unit == 'label' else 0)
    for r in record['removed']:
        for i in r['annotation_ids']:
            assert (by_id[i]['image_id'], by_id[i]['category_id']) == (r['image_id'], r['category_id'])
        if unit == 'box':
            assert len(r['annotation_ids']) == 1
        else:  # a missing label takes every box of its class on that canvas
            assert sorted(r['annotation_ids']) == sorted(
                a['id'] for a in complete['annotations']
                if (a['image_id'], a['category_id']) == (r['image_id'], r['category_id']))


def test_removals_follow_the_documented_generator(tmp_path, source):
    """Recomputed from the recipe in the record: SeedSequence([seed, b'missing' as an integer]), one uniform
    draw per (image, class) pair in increasing order, removed when below the rate."""
    full = build(source, tmp_path / 'r0', '--seed', 5)
    part = build(source, tmp_path / 'r', '--seed', 5, '--missing-rate', 0.45)
    pairs = sorted({(a['image_id'], a['category_id']) for a in load(full, 'instances_train.json')['annotations']})
    rng = np.random.default_rng(np.random.SeedSequence([5, int.from_bytes(b'missing', 'big')]))
    expected = [p for p, u in zip(pairs, rng.random(len(pairs))) if u < 0.45]
    record = load(part, mfc.REMOVED_FILE)
    assert [(r['image_id'], r['category_id']) for r in record['removed']] == expected
    assert record['seed'] == 5


@pytest.mark.parametrize('unit', ['label', 'box'])
def test_removal_rate_within_binomial_tolerance(tmp_path, source, unit):
    rho = 0.3
    full = build(source, tmp_path / 'r0', num_train=500, num_test=1)
    part = build(source, tmp_path / 'r', '--missing-rate', rho, '--missing-unit', unit,
                 num_train=500, num_test=1)
    anns = load(full, 'instances_train.json')['annotations']
    n = len(anns) if unit == 'box' else len({(a['image_id'], a['category_id']) for a in anns})
    k = len(load(part, mfc.REMOVED_FILE)['removed'])
    assert n > 700
    assert abs(k - rho * n) <= 4 * math.sqrt(n * rho * (1 - rho)), (k, n)


def test_a_smaller_rate_removes_a_subset(tmp_path, source):
    low = load(build(source, tmp_path / 'a', '--missing-rate', 0.1), mfc.REMOVED_FILE)['removed']
    high = load(build(source, tmp_path / 'b', '--missing-rate', 0.5), mfc.REMOVED_FILE)['removed']
    low_pairs = {(r['image_id'], r['category_id']) for r in low}
    high_pairs = {(r['image_id'], r['category_id']) for r in high}
    assert low_pairs < high_pairs


def test_multilabel_labels_lose_exactly_the_recorded_pairs(tmp_path, source):
    from mmdet_asl.datasets import CocoMultiLabel
    full = build(source, tmp_path / 'r0')
    part = build(source, tmp_path / 'r', '--missing-rate', 0.6)
    complete = {}
    for a in load(full, 'instances_train.json')['annotations']:
        complete.setdefault(a['image_id'], set()).add(a['category_id'] - 1)
    for r in load(part, mfc.REMOVED_FILE)['removed']:
        complete[r['image_id']].discard(r['category_id'] - 1)
    ds = CocoMultiLabel(ann_file='annotations/instances_train.json', data_root=str(part), data_prefix='train',
                        drop_empty=False)
    assert len(ds) == 30  # canvases whose every label is missing stay, as all-negative samples
    assert any(not labels for labels in complete.values())
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        assert set(info['gt_label']) == complete[info['img_id']]


def test_changing_the_rate_rebuilds_and_rate_zero_drops_the_record(tmp_path, source, capsys):
    out = build(source, tmp_path / 'o', '--missing-rate', 0.3)
    capsys.readouterr()
    build(source, out, '--missing-rate', 0.3)
    assert 'is up to date' in capsys.readouterr().out
    build(source, out, '--missing-rate', 0.2)
    assert 'is up to date' not in capsys.readouterr().out
    assert load(out, mfc.REMOVED_FILE)['missing_rate'] == 0.2
    build(source, out, '--missing-rate', 0.2, '--missing-unit', 'box')
    assert 'is up to date' not in capsys.readouterr().out
    assert load(out, mfc.REMOVED_FILE)['missing_unit'] == 'box'
    (out / 'annotations' / mfc.REMOVED_FILE).unlink()
    build(source, out, '--missing-rate', 0.2, '--missing-unit', 'box')
    assert 'is up to date' not in capsys.readouterr().out  # a lost record is remade
    build(source, out)
    assert not (out / 'annotations' / mfc.REMOVED_FILE).exists()
    assert 'missing_rate' not in load(out, 'instances_train.json')['info']
    capsys.readouterr()
    build(source, out, '--num-classes', 4)
    assert 'is up to date' not in capsys.readouterr().out
    assert len(load(out, 'instances_test.json')['categories']) == 4


@pytest.mark.parametrize('value', ['-0.1', '1', '1.5', 'nan'])
def test_missing_rate_outside_0_1_is_refused(tmp_path, source, capsys, value):
    with pytest.raises(SystemExit) as exc:
        mfc.main(['--src', source[0], '--out', str(tmp_path / 'o'), '--missing-rate', value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert '--missing-rate must be in [0, 1)' in err and f'got {float(value)}' in err
    assert not (tmp_path / 'o').exists()


@pytest.mark.parametrize('value', ['0', '11'])
def test_num_classes_outside_the_source_is_refused(tmp_path, source, capsys, value):
    with pytest.raises(SystemExit):
        mfc.main(['--src', source[0], '--out', str(tmp_path / 'o'), '--num-classes', value])
    err = capsys.readouterr().err
    assert '--num-classes must be in [1, 10]' in err and f'got {value}' in err


def test_num_classes_keeps_the_first_k_classes(tmp_path, source):
    out = build(source, tmp_path / 'k4', '--num-classes', 4, '--min-items', 2, '--max-items', 2, num_train=40)
    for split in ('train', 'test'):
        coco = load(out, f'instances_{split}.json')
        assert [c['name'] for c in coco['categories']] == ['T-shirt/top', 'Trouser', 'Pullover', 'Dress']
        assert coco['info']['num_classes'] == 4
        for a in coco['annotations']:  # every item is a source image of its class, among the first four
            assert a['category_id'] <= 4
            assert source[1][split][a['source_index']] == a['category_id'] - 1
    # two items of 4 equally likely classes: a canvas has 2 classes with probability 3/4, else 1
    per_image = {}
    for a in load(out, 'instances_train.json')['annotations']:
        per_image.setdefault(a['image_id'], set()).add(a['category_id'])
    assert len(per_image) == 40 and all(1 <= len(v) <= 2 for v in per_image.values())


def test_num_classes_10_is_the_default_output(tmp_path, source):
    a = build(source, tmp_path / 'a')
    b = build(source, tmp_path / 'b', '--num-classes', 10)
    assert same_tree(a / 'annotations', b / 'annotations') and same_tree(a / 'train', b / 'train')


def test_classes_choose_the_categories_and_their_order(tmp_path, source):
    out = build(source, tmp_path / 'tops', '--classes', 6, 0, 2, '--min-items', 2, '--max-items', 2, num_train=40)
    for split in ('train', 'test'):
        coco = load(out, f'instances_{split}.json')
        assert [(c['id'], c['name']) for c in coco['categories']] == [(1, 'Shirt'), (2, 'T-shirt/top'),
                                                                       (3, 'Pullover')]
        assert coco['info']['num_classes'] == 3 and coco['info']['classes'] == [6, 0, 2]
        assert coco['annotations']
        for a in coco['annotations']:  # category k is a source image of class classes[k - 1]
            assert source[1][split][a['source_index']] == [6, 0, 2][a['category_id'] - 1]


def test_classes_0_to_k_minus_1_are_num_classes_k(tmp_path, source):
    a = build(source, tmp_path / 'a', '--num-classes', 4)
    b = build(source, tmp_path / 'b', '--classes', 0, 1, 2, 3)
    assert same_tree(a / 'annotations', b / 'annotations') and same_tree(a / 'train', b / 'train')


def test_changing_the_classes_rebuilds(tmp_path, source, capsys):
    out = build(source, tmp_path / 'o', '--classes', 0, 2, 6)
    capsys.readouterr()
    build(source, out, '--classes', 0, 2, 6)
    assert 'up to date' in capsys.readouterr().out
    build(source, out, '--classes', 0, 2, 4)
    assert 'up to date' not in capsys.readouterr().out
    assert [c['name'] for c in load(out, 'instances_train.json')['categories']] == ['T-shirt/top', 'Pullover',
                                                                                    'Coat']


@pytest.mark.parametrize('extra, message', [
    (['--classes', '0', '10'], '--classes must be distinct indices in [0, 9]'),
    (['--classes', '2', '2'], '--classes must be distinct indices in [0, 9]'),
    (['--classes', '-1'], '--classes must be distinct indices in [0, 9]'),
    (['--classes', '0', '2', '--num-classes', '3'], '--num-classes 3 and --classes (of 2) disagree'),
])
def test_bad_classes_are_refused(tmp_path, source, capsys, extra, message):
    with pytest.raises(SystemExit):
        mfc.main(['--src', source[0], '--out', str(tmp_path / 'o'), *extra])
    assert message in capsys.readouterr().err

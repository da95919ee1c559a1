"""Multi-label datasets on tiny synthetic layouts, their missing-data errors, and the canvas script."""
import gzip
import json
import os
import os.path as osp
import struct
import sys

import numpy as np
import pytest
from PIL import Image

import mmdet_asl.datasets  # noqa: F401
from mmdet_asl.datasets import CocoMultiLabel, NUSWIDEMultiLabel, OpenImagesPartialLabel, VOC2007MultiLabel

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools', 'dataset_converters'))
import make_fashion_canvases as mfc  # noqa: E402


def _coco(tmp_path):
    root = tmp_path / 'coco'
    (root / 'annotations').mkdir(parents=True)
    (root / 'imgs').mkdir()
    coco = dict(
        images=[dict(id=i, file_name=f'{i}.jpg', width=8, height=8) for i in (1, 2, 3)],
        # category ids are not contiguous: labels follow increasing id order
        categories=[dict(id=7, name='b'), dict(id=3, name='a'), dict(id=9, name='c')],
        annotations=[dict(id=1, image_id=1, category_id=9, bbox=[0, 0, 2, 2], area=4, iscrowd=0),
                     dict(id=2, image_id=1, category_id=3, bbox=[0, 0, 2, 2], area=4, iscrowd=1),
                     dict(id=3, image_id=1, category_id=9, bbox=[1, 1, 2, 2], area=4, iscrowd=0),
                     dict(id=4, image_id=3, category_id=7, bbox=[0, 0, 2, 2], area=4, iscrowd=0)])
    (root / 'annotations' / 'inst.json').write_text(json.dumps(coco))
    return root


def test_coco_multilabel_labels_and_empty_images(tmp_path):
    root = _coco(tmp_path)
    ds = CocoMultiLabel(ann_file='annotations/inst.json', data_root=str(root), data_prefix='imgs')
    assert ds.metainfo['classes'] == ('a', 'b', 'c')
    assert len(ds) == 2  # image 2 has no annotation: dropped (official ASL behaviour)
    assert ds.get_data_info(0)['gt_label'] == [0, 2]  # crowd 'a' (id 3) and 'c' (id 9), once each
    assert ds.get_data_info(0)['img_path'] == osp.join(str(root), 'imgs', '1.jpg')
    assert ds.get_data_info(1)['gt_label'] == [1]
    kept = CocoMultiLabel(ann_file='annotations/inst.json', data_root=str(root), data_prefix='imgs',
                          drop_empty=False)
    assert len(kept) == 3 and kept.get_data_info(1)['gt_label'] == []


@pytest.mark.parametrize('build', [
    lambda r: CocoMultiLabel(ann_file='annotations/instances_train2014.json', data_root=r, data_prefix='train2014'),
    lambda r: VOC2007MultiLabel(data_root=r, split='trainval'),
    lambda r: NUSWIDEMultiLabel(data_root=r, split='train'),
    lambda r: OpenImagesPartialLabel(data_root=r, ann_file='annotations/train.csv'),
])
def test_missing_data_names_file_and_layout(tmp_path, build):
    with pytest.raises(FileNotFoundError, match='Expected layout') as info:
        build(str(tmp_path / 'absent'))
    assert str(tmp_path / 'absent') in str(info.value)


def _nus(tmp_path, n=40, matrix=False):
    root = tmp_path / 'nus'
    (root / 'ImageList').mkdir(parents=True)
    (root / 'Groundtruth' / 'AllLabels').mkdir(parents=True)
    concepts = ['sky', 'water', 'cat']
    (root / 'Concepts81.txt').write_text('\n'.join(concepts) + '\n')
    (root / 'ImageList' / 'Imagelist.txt').write_text('\n'.join(f'dir\\im{i}.jpg' for i in range(n)) + '\n')
    labels = np.random.default_rng(0).integers(0, 2, size=(n, 3))
    labels[0] = 0  # one unlabeled image
    if matrix:
        np.savetxt(root / 'labels.txt', labels, fmt='%d')
    else:
        for j, c in enumerate(concepts):
            np.savetxt(root / 'Groundtruth' / 'AllLabels' / f'Labels_{c}.txt', labels[:, j], fmt='%d')
    return root, labels


@pytest.mark.parametrize('matrix', [False, True])
def test_nus_wide_split(tmp_path, matrix):
    root, labels = _nus(tmp_path, matrix=matrix)
    kw = dict(data_root=str(root), label_file='labels.txt' if matrix else None)
    train = NUSWIDEMultiLabel(split='train', **kw)
    test = NUSWIDEMultiLabel(split='test', **kw)
    n_kept = int((labels.sum(1) > 0).sum())
    assert len(train) == round(0.7 * n_kept) and len(train) + len(test) == n_kept
    paths = {train.get_data_info(i)['img_path'] for i in range(len(train))}
    assert not paths & {test.get_data_info(i)['img_path'] for i in range(len(test))}
    assert train.metainfo['classes'] == ('sky', 'water', 'cat')
    info = train.get_data_info(0)
    idx = int(osp.basename(info['img_path'])[2:-4])
    assert info['gt_label'] == np.flatnonzero(labels[idx]).tolist()
    assert info['img_path'].endswith(osp.join('Flickr', 'dir', f'im{idx}.jpg'))
    again = NUSWIDEMultiLabel(split='train', **kw)
    assert [again.get_data_info(i)['img_path'] for i in range(len(again))] == sorted(
        paths, key=lambda p: int(osp.basename(p)[2:-4]))


def _openimages(tmp_path):
    root = tmp_path / 'oi'
    (root / 'annotations').mkdir(parents=True)
    (root / 'train').mkdir()
    (root / 'annotations' / 'classes.txt').write_text('/m/a\n/m/b\n/m/c\n/m/d\n')
    rows = ['ImageID,Source,LabelName,Confidence',
            'img1,verification,/m/a,1', 'img1,verification,/m/b,0', 'img1,verification,/m/zzz,1',
            'img2,verification,/m/d,1', 'img3,verification,/m/zzz,1']
    (root / 'annotations' / 'train.csv').write_text('\n'.join(rows) + '\n')
    for name in ('img1', 'img2'):
        Image.fromarray(np.full((16, 16, 3), 100, np.uint8)).save(root / 'train' / f'{name}.jpg')
    return root


def test_open_images_partial_labels(tmp_path):
    root = _openimages(tmp_path)
    ds = OpenImagesPartialLabel(data_root=str(root), ann_file='annotations/train.csv', untagged_weight=0.25)
    assert len(ds) == 2  # img3 has no label among the classes
    info = ds.get_data_info(0)
    np.testing.assert_array_equal(info['gt_score'], [1, 0, 0, 0])
    np.testing.assert_array_equal(info['gt_label_weight'], [1, 1, 0.25, 0.25])
    ev = OpenImagesPartialLabel(data_root=str(root), ann_file='annotations/train.csv', untagged='ignore')
    np.testing.assert_array_equal(ev.get_data_info(0)['gt_score'], [1, 0, -1, -1])
    with pytest.raises(ValueError, match='untagged_weight'):
        OpenImagesPartialLabel(data_root=str(root), ann_file='annotations/train.csv', untagged_weight=2)


def _fake_fashion_mnist(folder, n_train=50, n_test=30):
    """Random 28x28 "products" in the IDX layout (the tests run without the Debian package too)."""
    rng = np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    for split, n in (('train', n_train), ('test', n_test)):
        img_file, lbl_file = mfc.FILES[split]
        images = np.zeros((n, 28, 28), np.uint8)
        images[:, 6:22, 8:20] = rng.integers(60, 255, size=(n, 16, 12))
        with gzip.open(osp.join(folder, img_file), 'wb') as f:
            f.write(struct.pack('>IIII', 0x0803, n, 28, 28) + images.tobytes())
        with gzip.open(osp.join(folder, lbl_file), 'wb') as f:
            f.write(struct.pack('>II', 0x0801, n) + rng.integers(0, 10, n).astype(np.uint8).tobytes())
    return folder


def fashion_source(tmp_path):
    try:
        return mfc.find_source()
    except FileNotFoundError:
        return _fake_fashion_mnist(str(tmp_path / 'fake_fashion_mnist'))


def test_canvas_script(tmp_path):
    src = fashion_source(tmp_path)
    out = tmp_path / 'canvas'
    args = ['--src', src, '--out', str(out), '--num-train', '12', '--num-test', '6', '--seed', '3']
    assert mfc.main(args) == 0
    first = (out / 'annotations' / 'instances_train.json').read_text()
    coco = json.loads(first)
    assert len(coco['images']) == 12 and len(coco['categories']) == 10
    assert coco['info']['source_split'] == 'train'
    assert json.loads((out / 'annotations' / 'instances_test.json').read_text())['info']['source_split'] == 'test'
    per_image = {}
    for ann in coco['annotations']:
        per_image.setdefault(ann['image_id'], []).append(ann)
    assert all(1 <= len(v) <= 4 for v in per_image.values()) and len(per_image) == 12
    for img_id, anns in per_image.items():
        canvas = np.asarray(Image.open(out / 'train' / f'{img_id - 1:06d}.png'))
        assert canvas.shape == (64, 64)
        for ann in anns:
            x, y, w, h = ann['bbox']
            assert 0 <= x and 0 <= y and x + w <= 64 and y + h <= 64
            crop = canvas[y:y + h, x:x + w]
            # exact box: non-empty first/last rows and columns
            assert crop[0].any() and crop[-1].any() and crop[:, 0].any() and crop[:, -1].any()
    # same seed -> same output; rebuilding with --force reproduces it byte for byte
    assert mfc.main(args + ['--force']) == 0
    assert (out / 'annotations' / 'instances_train.json').read_text() == first
    ds = CocoMultiLabel(ann_file='annotations/instances_test.json', data_root=str(out), data_prefix='test')
    assert len(ds) == 6 and ds.metainfo['classes'] == mfc.CLASSES


def test_canvas_script_missing_source(tmp_path, capsys):
    assert mfc.main(['--src', str(tmp_path / 'nowhere'), '--out', str(tmp_path / 'o')]) == 2
    err = capsys.readouterr().err
    assert 'train-images-idx3-ubyte.gz' in err and 'apt-get install -y dataset-fashion-mnist' in err


def test_cutout_random_fill():
    from mmdet_asl.datasets import CutoutRandomFill
    np.random.seed(0)
    img = np.zeros((40, 60, 3), np.uint8)
    out = CutoutRandomFill(cutout_factor=0.5)(dict(img=img.copy()))['img']
    changed = (out != 0).any(-1)
    ys, xs = np.nonzero(changed)
    assert changed.any() and img.sum() == 0  # the input is not modified in place
    assert ys.max() - ys.min() + 1 <= 20 and xs.max() - xs.min() + 1 <= 30
    # one colour inside the hole (a random fill of 0 in a channel is possible, so compare the pixels)
    assert len({tuple(p) for p in out[changed]}) == 1
    assert CutoutRandomFill(prob=0.0)(dict(img=img))['img'] is img
    with pytest.raises(ValueError, match='cutout_factor'):
        CutoutRandomFill(cutout_factor=0)


# ----------------------------------------------------------------- malformed files: errors name the file
from mmdet_asl.datasets.checks import DatasetFileError  # noqa: E402


def _raises(build, path, *fragments):
    with pytest.raises((DatasetFileError, FileNotFoundError)) as info:
        build()
    message = str(info.value)
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def _coco_json(tmp_path, content):
    root = _coco(tmp_path)
    path = root / 'annotations' / 'inst.json'
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return root, path, lambda: CocoMultiLabel(ann_file='annotations/inst.json', data_root=str(root),
                                              data_prefix='imgs')


def test_coco_empty_corrupt_unknown_category_and_duplicate_ids(tmp_path):
    root, path, build = _coco_json(tmp_path, '')
    _raises(build, path, 'is empty', 'COCO instances JSON')
    path.write_text('{"images": [')
    _raises(build, path, 'not valid JSON', 'line 1')
    good = dict(images=[dict(id=1, file_name='1.jpg')], categories=[dict(id=3, name='a'), dict(id=7, name='b')],
                annotations=[dict(id=5, image_id=1, category_id=99)])
    path.write_text(json.dumps(good))
    _raises(build, path, 'annotations[0]', 'category_id 99', '[3, 7]')
    good['annotations'][0]['category_id'] = 3
    good['categories'].append(dict(id=3, name='c'))
    path.write_text(json.dumps(good))
    _raises(build, path, 'categories[2]', 'repeats category id 3', "'a' and 'c'")


def test_coco_without_annotated_images(tmp_path):
    root, path, build = _coco_json(tmp_path, dict(images=[dict(id=1, file_name='1.jpg')],
                                                  categories=[dict(id=1, name='a')], annotations=[]))
    _raises(build, path, 'no samples', 'without annotations')


def test_voc_empty_image_list(tmp_path):
    root = tmp_path / 'voc'
    for sub in ('JPEGImages', 'Annotations', 'ImageSets/Main'):
        (root / sub).mkdir(parents=True)
    listing = root / 'ImageSets' / 'Main' / 'trainval.txt'
    listing.write_text('\n\n')
    _raises(lambda: VOC2007MultiLabel(data_root=str(root), split='trainval'), listing, 'is empty', 'image id')


@pytest.mark.parametrize('which', ['list', 'concepts', 'labels'])
def test_nus_wide_empty_files(tmp_path, which):
    root, _ = _nus(tmp_path)
    path = {'list': root / 'ImageList' / 'Imagelist.txt', 'concepts': root / 'Concepts81.txt',
            'labels': root / 'Groundtruth' / 'AllLabels' / 'Labels_water.txt'}[which]
    path.write_text('')
    _raises(lambda: NUSWIDEMultiLabel(data_root=str(root)), path, 'is empty')


def test_nus_wide_bad_label_line_latin1_and_duplicate_concepts(tmp_path):
    root, _ = _nus(tmp_path)
    labels = root / 'Groundtruth' / 'AllLabels' / 'Labels_sky.txt'
    lines = labels.read_text().splitlines()
    lines[3] = 'yes'
    labels.write_text('\n'.join(lines) + '\n')
    _raises(lambda: NUSWIDEMultiLabel(data_root=str(root)), labels, 'line 4', "'yes'", 'expected 0 or 1')
    concepts = root / 'Concepts81.txt'
    concepts.write_bytes('sky\nwater\ncaf\u00e9\n'.encode('latin-1'))
    _raises(lambda: NUSWIDEMultiLabel(data_root=str(root)), concepts, 'line 3 is not UTF-8', 'iconv')
    concepts.write_text('sky\nwater\nsky\n')
    _raises(lambda: NUSWIDEMultiLabel(data_root=str(root)), concepts, 'lines 1 and 3', "'sky'")


def test_nus_wide_official_split(tmp_path):
    root, _ = _nus(tmp_path)
    (root / 'Groundtruth' / 'TrainTestLabels').mkdir(parents=True)
    rng = np.random.default_rng(1)
    sizes = dict(Train=6, Test=4)
    for tag, n in sizes.items():
        (root / 'ImageList' / f'{tag}Imagelist.txt').write_text('\n'.join(f'{tag}\\{i}.jpg' for i in range(n)))
        split_labels = rng.integers(0, 2, size=(n, 3))
        split_labels[0] = [1, 0, 1]
        split_labels[1] = 0  # unlabeled: dropped
        for j, c in enumerate(['sky', 'water', 'cat']):
            np.savetxt(root / 'Groundtruth' / 'TrainTestLabels' / f'Labels_{c}_{tag}.txt', split_labels[:, j],
                       fmt='%d')
    train = NUSWIDEMultiLabel(data_root=str(root), split='train', split_mode='official')
    test = NUSWIDEMultiLabel(data_root=str(root), split='test', split_mode='official')
    assert len(train) == 5 and len(test) == 3  # the official lists, minus the unlabeled image of each
    assert train.get_data_info(0)['img_path'].endswith(osp.join('Flickr', 'Train', '0.jpg'))
    assert train.get_data_info(0)['gt_label'] == [0, 2]
    assert test.get_data_info(1)['img_path'].endswith(osp.join('Test', '2.jpg'))
    with pytest.raises(ValueError, match='split_mode'):
        NUSWIDEMultiLabel(data_root=str(root), split_mode='paper')


def _oi_build(root, **kw):
    return lambda: OpenImagesPartialLabel(data_root=str(root), ann_file='annotations/train.csv', **kw)


def test_open_images_malformed_files(tmp_path):
    root = _openimages(tmp_path)
    csv_file, classes = root / 'annotations' / 'train.csv', root / 'annotations' / 'classes.txt'
    rows = csv_file.read_text().splitlines()
    csv_file.write_text(rows[0] + '\n')
    _raises(_oi_build(root), csv_file, 'no annotation row')
    csv_file.write_text('\n'.join(rows[:2] + ['img2,verification,/m/d,sure'] + rows[3:]) + '\n')
    _raises(_oi_build(root), csv_file, 'line 3', "Confidence 'sure'", 'expected a number')
    csv_file.write_text('\n'.join(rows) + '\n')
    classes.write_text('/m/x\n/m/y\n')
    message = _raises(_oi_build(root), csv_file, 'none of the', '/m/a')
    assert str(classes) in message
    classes.write_text('')
    _raises(_oi_build(root), classes, 'is empty')
    classes.write_text('LabelName,DisplayName\n')
    _raises(_oi_build(root), classes, 'no class')
    classes.write_bytes('/m/a,Caf\u00e9\n/m/b,b\n'.encode('latin-1'))
    _raises(_oi_build(root), classes, 'line 1 is not UTF-8')
    classes.write_text('/m/a\n/m/b\n/m/a\n')
    _raises(_oi_build(root), classes, 'lines 1 and 3', "'/m/a'")


def test_zero_byte_image_names_the_file(tmp_path):
    root = _openimages(tmp_path)
    image = root / 'train' / 'img1.jpg'
    image.write_bytes(b'')
    ds = OpenImagesPartialLabel(data_root=str(root), ann_file='annotations/train.csv',
                                pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')])
    _raises(lambda: ds[0], image, 'empty (0 bytes)', 'sample 0')
    assert ds[1]['inputs'].shape == (3, 16, 16)
    image.write_bytes(b'not a jpeg at all')
    _raises(lambda: ds[0], image, 'cannot load sample 0')


# ----------------------------------------------------------------- label values
def _voc(tmp_path, objects):
    """A VOC2007 layout: ``objects`` maps an image id to its (class name, difficult) objects."""
    root = tmp_path / 'voc'
    for sub in ('JPEGImages', 'Annotations', 'ImageSets/Main'):
        (root / sub).mkdir(parents=True)
    for img_id, objs in objects.items():
        body = ''.join(f'<object><name>{n}</name><difficult>{d}</difficult></object>' for n, d in objs)
        (root / 'Annotations' / f'{img_id}.xml').write_text(f'<annotation>{body}</annotation>')
    (root / 'ImageSets' / 'Main' / 'trainval.txt').write_text('\n'.join(objects) + '\n')
    return root


def test_voc_clear_and_difficult_object_of_one_class_stays_positive(tmp_path):
    import torch

    from mmdet_asl.evaluation import ASLMultiLabelMetric
    root = _voc(tmp_path, {'000001': [('cat', 0), ('cat', 1), ('dog', 1)],  # cat clear + difficult, dog difficult
                           '000002': [('dog', 0)], '000003': [('cat', 0)]})
    ds = VOC2007MultiLabel(data_root=str(root), split='trainval')
    cat, dog = ds.metainfo['classes'].index('cat'), ds.metainfo['classes'].index('dog')
    info = ds.get_data_info(0)
    assert sorted(info['gt_label']) == [cat] and sorted(info['gt_label_difficult']) == sorted([cat, dog])
    # cat on 000001 is a positive (a clear object), dog there is ignored (only a difficult one)
    scores = {cat: (0.9, 0.8, 0.3), dog: (0.95, 0.5, 0.1)}
    metric = ASLMultiLabelMetric(topk=None)
    samples = []
    for i in range(3):
        pred = torch.zeros(20)
        for c, s in scores.items():
            pred[c] = s[i]
        d = ds.get_data_info(i)
        samples.append(dict(pred_score=pred, gt_label=torch.tensor(d['gt_label']),
                            gt_label_difficult=d['gt_label_difficult']))
    metric.process(None, samples)
    target = metric.results[0][1]
    assert target[cat] == 1 and target[dog] == -1 and target.abs().sum() == 2
    # by hand: cat ranks 000001 (+, .9), 000002 (.8), 000003 (+, .3): AP (1 + 2/3) / 2 = 5/6; dog: 000001
    # ignored, 000002 (+, .5) first: AP 1; mAP over the two classes with positives = 11/12
    assert metric.compute_metrics(metric.results)['mAP'] == pytest.approx(1100 / 12, abs=1e-3)


def _oi_rows(tmp_path, rows):
    root = _openimages(tmp_path)
    (root / 'annotations' / 'train.csv').write_text('\n'.join(['ImageID,Source,LabelName,Confidence'] + rows) + '\n')
    return root


def test_open_images_present_and_absent_rows_for_one_class(tmp_path):
    """Two rows for one (image, class), present and absent (e.g. two verification sources): present wins."""
    root = _oi_rows(tmp_path, ['img1,verification,/m/a,0', 'img1,crowdsource-verification,/m/a,1',
                               'img1,verification,/m/b,1', 'img1,verification,/m/b,0', 'img1,verification,/m/c,0'])
    ds = OpenImagesPartialLabel(data_root=str(root), ann_file='annotations/train.csv', untagged_weight=0.25)
    info = ds.get_data_info(0)
    np.testing.assert_array_equal(info['gt_score'], [1, 1, 0, 0])  # a, b present; c absent; d untagged
    np.testing.assert_array_equal(info['gt_label_weight'], [1, 1, 1, 0.25])
    # the pairs are named with their lines (header = line 1)
    assert ds.label_conflicts == [('img1', '/m/a', 2, 3), ('img1', '/m/b', 4, 5)]


def test_open_images_nan_confidence_is_refused(tmp_path):
    for bad in ('nan', 'NaN', 'inf', '-1', '2'):
        root = _oi_rows(tmp_path / bad, ['img1,verification,/m/a,1', f'img2,verification,/m/b,{bad}'])
        csv_file = root / 'annotations' / 'train.csv'
        _raises(_oi_build(root), csv_file, 'line 3', 'ImageID img2', 'LabelName /m/b', f'Confidence {bad!r}',
                'expected a number in [0, 1]')


def test_open_images_drop_empty_false_keeps_images_of_other_classes(tmp_path):
    root = _openimages(tmp_path)  # img3's only row is of /m/zzz, which is not among the classes
    kept = OpenImagesPartialLabel(data_root=str(root), ann_file='annotations/train.csv', drop_empty=False,
                                  untagged_weight=0.25)
    assert [osp.basename(kept.get_data_info(i)['img_path']) for i in range(len(kept))] == [
        'img1.jpg', 'img2.jpg', 'img3.jpg']
    info = kept.get_data_info(2)
    np.testing.assert_array_equal(info['gt_score'], [0, 0, 0, 0])  # every class untagged: negative, weight 0.25
    np.testing.assert_array_equal(info['gt_label_weight'], [0.25] * 4)
    ev = OpenImagesPartialLabel(data_root=str(root), ann_file='annotations/train.csv', drop_empty=False,
                                untagged='ignore')
    np.testing.assert_array_equal(ev.get_data_info(2)['gt_score'], [-1] * 4)
    dropped = OpenImagesPartialLabel(data_root=str(root), ann_file='annotations/train.csv')
    assert len(dropped) == 2

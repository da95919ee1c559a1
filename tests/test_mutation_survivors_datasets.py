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


# ------------------------------------------------------------ checks.py and multilabel.py
import json  # noqa: E402

from mmdet_asl.datasets import CocoMultiLabel, VOC2007MultiLabel  # noqa: E402
from mmdet_asl.datasets import multilabel as multilabel_module  # noqa: E402
from mmdet_asl.datasets.checks import DatasetFileError, NamedSampleErrors, check_files, read_json  # noqa: E402

COCO_LAYOUT_HEAD = 'data/coco/\n    annotations/instances_train2014.json\n'
VOC_LAYOUT_HEAD = 'data/VOC2007/ '


def test_check_files_names_every_missing_path_comma_separated(tmp_path):
    there = tmp_path / 'there'
    there.mkdir()
    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    with pytest.raises(FileNotFoundError) as info:
        check_files('DS', [a, str(there), b], 'LAYOUT')
    assert str(info.value) == (f"DS: missing '{a}', '{b}'. Expected layout (paths relative to the "
                               "config's data_root):\nLAYOUT")


def test_read_json_non_utf8_bytes_and_non_object(tmp_path):
    path = tmp_path / 'x.json'
    path.write_bytes(b'{"a": "\xff"}')  # not UTF-8: a file error, not a bare UnicodeDecodeError
    with pytest.raises(DatasetFileError, match='is not valid JSON'):
        read_json('DS', str(path), 'an object')
    path.write_text('[1, 2]')
    with pytest.raises(DatasetFileError) as info:
        read_json('DS', str(path), 'an object')
    assert str(info.value) == f'DS: {path} holds a JSON list; expected an object'


class _Loader:
    def __init__(self, paths):
        self.paths = paths

    def prepare_data(self, idx):
        raise KeyError('boom')

    def get_data_info(self, idx):
        return dict(img_path=self.paths[idx])


class BrokenImages(NamedSampleErrors, _Loader):
    pass


def test_named_sample_errors_messages(tmp_path):
    empty, bad = tmp_path / 'empty.jpg', tmp_path / 'bad.jpg'
    empty.write_bytes(b'')
    bad.write_bytes(b'xx')
    ds = BrokenImages([str(empty), str(bad)])
    with pytest.raises(DatasetFileError) as info:
        ds.prepare_data(0)
    assert str(info.value) == (f'BrokenImages: image {empty} (sample 0) is empty (0 bytes); expected an image '
                               'file: copy it again or remove it from the annotations')
    with pytest.raises(DatasetFileError) as info:
        ds.prepare_data(1)
    assert str(info.value) == f"BrokenImages: cannot load sample 1 (image {bad}): KeyError: 'boom'"


def _coco_files(root, annotations, n_images=3, categories=((4, 'x'), (2, 'y'))):
    (root / 'imgs').mkdir(parents=True, exist_ok=True)
    data = dict(images=[dict(id=i, file_name=f'{i}.jpg') for i in range(1, n_images + 1)],
                categories=[dict(id=c, name=n) for c, n in categories],
                annotations=[dict(id=k, image_id=i, category_id=c) for k, (i, c) in enumerate(annotations)])
    (root / 'ann.json').write_text(json.dumps(data))
    return str(root / 'ann.json')


def test_coco_defaults_are_relative_to_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _coco_files(tmp_path, [(1, 2)])
    ds = CocoMultiLabel(ann_file='ann.json')  # data_root '', data_prefix '': images beside the file
    assert len(ds) == 1
    info = ds.get_data_info(0)
    assert (info['img_path'], info['gt_label'], info['img_id']) == ('1.jpg', [0], 1)
    # a data_prefix dict without img_path: file names as written, no folder checked
    ds = CocoMultiLabel(ann_file='ann.json', data_root=str(tmp_path), data_prefix=dict())
    assert ds.get_data_info(0)['img_path'] == '1.jpg'


def test_coco_labels_image_ids_and_dropped_count(tmp_path, monkeypatch):
    messages = []

    class Logger:
        def info(self, msg):
            messages.append(msg)

    monkeypatch.setattr(multilabel_module.MMLogger, 'get_current_instance', lambda: Logger())
    ann = _coco_files(tmp_path, [(2, 4), (2, 2), (4, 2)], n_images=5)
    ds = CocoMultiLabel(ann_file=ann, data_prefix=str(tmp_path / 'imgs'), test_mode=True)
    assert ds.test_mode is True  # other keyword arguments reach MMEngine's BaseDataset
    assert ds.metainfo['classes'] == ('y', 'x')  # category ids 2 then 4
    got = [(d['img_id'], d['gt_label']) for d in (ds.get_data_info(i) for i in range(len(ds)))]
    assert got == [(2, [0, 1]), (4, [0])]
    assert messages == [f'CocoMultiLabel: dropped 3 images without annotations from {ann} (drop_empty=True), '
                        'kept 2']
    ann = _coco_files(tmp_path, [], n_images=2)
    with pytest.raises(DatasetFileError) as info:
        CocoMultiLabel(ann_file=ann, data_prefix=str(tmp_path / 'imgs'))
    assert str(info.value) == (f'CocoMultiLabel: no samples: {ann} has 2 images, 2 of them without '
                               'annotations (dropped with drop_empty=True)')


def test_coco_given_classes_kept_or_count_refused(tmp_path):
    ann = _coco_files(tmp_path, [(1, 4)])
    imgs = str(tmp_path / 'imgs')
    ds = CocoMultiLabel(ann_file=ann, data_prefix=imgs, metainfo=dict(classes=('p', 'q')))
    assert ds.metainfo['classes'] == ('p', 'q')
    with pytest.raises(ValueError) as info:
        CocoMultiLabel(ann_file=ann, data_prefix=imgs, metainfo=dict(classes=('p', 'q', 'r')))
    assert str(info.value) == f'CocoMultiLabel: 3 classes given, but {ann} has 2 categories'


def test_coco_missing_files_and_bad_content_name_the_dataset(tmp_path):
    ann = _coco_files(tmp_path, [(1, 4)])
    missing = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError) as info:
        CocoMultiLabel(ann_file=ann, data_prefix=missing)
    message = str(info.value)
    assert message.startswith(f"CocoMultiLabel: missing '{missing}'. Expected layout") and COCO_LAYOUT_HEAD in message
    imgs = str(tmp_path / 'imgs')
    (tmp_path / 'ann.json').write_text('')
    with pytest.raises(DatasetFileError) as info:
        CocoMultiLabel(ann_file=ann, data_prefix=imgs)
    assert str(info.value).startswith(f'CocoMultiLabel: {ann} is empty; expected a COCO instances JSON')
    ann = _coco_files(tmp_path, [(1, 99)])
    with pytest.raises(DatasetFileError) as info:
        CocoMultiLabel(ann_file=ann, data_prefix=imgs)
    assert str(info.value).startswith(f'CocoMultiLabel: {ann} ') and 'category_id 99' in str(info.value)


def _voc_root(tmp_path, ids, ann=True):
    root = tmp_path / 'voc'
    for sub in ('JPEGImages', 'ImageSets/Main') + (('Annotations',) if ann else ()):
        (root / sub).mkdir(parents=True)
    (root / 'ImageSets' / 'Main' / 'test.txt').write_text(''.join(f'{i}\n' for i in ids))
    return root


def test_voc_missing_folder_empty_list_and_no_annotation_folder(tmp_path):
    root = _voc_root(tmp_path, ['000001'], ann=False)
    with pytest.raises(FileNotFoundError) as info:
        VOC2007MultiLabel(data_root=str(root), split='test')
    message = str(info.value)
    assert message.startswith(f"VOC2007MultiLabel: missing '{root / 'Annotations'}'. Expected layout")
    assert VOC_LAYOUT_HEAD in message
    # test_mode without an annotation folder: the images only, nothing else checked
    ds = VOC2007MultiLabel(data_root=str(root), split='test', test_mode=True,
                           data_prefix=dict(img_path='JPEGImages'))
    assert [ds.get_data_info(i)['img_path'] for i in range(len(ds))] == [str(root / 'JPEGImages' / '000001.jpg')]
    listing = root / 'ImageSets' / 'Main' / 'test.txt'
    listing.write_text(' \n')
    with pytest.raises(DatasetFileError) as info:
        VOC2007MultiLabel(data_root=str(root), split='test', test_mode=True, data_prefix=dict(img_path='JPEGImages'))
    assert str(info.value) == f'VOC2007MultiLabel: {listing} is empty; expected one image id (e.g. 000005) per line'


# ------------------------------------------------------------ open_images.py
from mmdet_asl.datasets import OpenImagesPartialLabel  # noqa: E402
from mmdet_asl.datasets import open_images as open_images_module  # noqa: E402

HEADER = 'ImageID,Source,LabelName,Confidence\n'


def _oi(tmp_path, classes, rows, header=HEADER, **kw):
    """An Open Images layout; ``rows`` are (ImageID, LabelName, Confidence) triples."""
    (tmp_path / 'annotations').mkdir(exist_ok=True)
    (tmp_path / 'train').mkdir(exist_ok=True)
    (tmp_path / 'annotations' / 'classes.txt').write_text(classes)
    body = header + ''.join(f'{i},verification,{m},{c}\n' for i, m, c in rows)
    (tmp_path / 'annotations' / 'train.csv').write_bytes(body.encode() if isinstance(body, str) else body)
    return lambda: OpenImagesPartialLabel(data_root=str(tmp_path), ann_file='annotations/train.csv', **kw)


def _message(build, exc=DatasetFileError):
    with pytest.raises(exc) as info:
        build()
    return str(info.value)


def test_open_images_argument_messages_and_bounds(tmp_path):
    assert _message(lambda: OpenImagesPartialLabel(data_root=str(tmp_path), ann_file='a.csv', untagged='drop'),
                    ValueError) == "OpenImagesPartialLabel: untagged must be 'negative' or 'ignore', got 'drop'"
    for weight in (0, 1):  # both ends of [0, 1] allowed
        ds = _oi(tmp_path, '/m/a\n', [('img1', '/m/a', 1)], untagged_weight=weight)()
        assert ds.untagged_weight == float(weight)


def test_open_images_values_names_and_dtypes(tmp_path):
    build = _oi(tmp_path, 'LabelName,DisplayName\n/m/a,Apple,extra\n/m/b,Bee\n/m/c\n',
                [('img1', '/m/a', 1), ('img1', '/m/b', 0.5), ('img1', '/m/c', 0.75)], untagged_weight=0.25)
    ds = build()
    assert ds.metainfo['classes'] == ('Apple', 'Bee', '/m/c')  # display name when given, else the MID
    info = ds.get_data_info(0)
    # 0.5 is not above 0.5: verified absent (target 0, weight 1); 0.75 is present
    assert info['gt_score'].tolist() == [1.0, 0.0, 1.0] and info['gt_score'].dtype == np.float32
    assert info['gt_label_weight'].tolist() == [1.0, 1.0, 1.0] and info['gt_label_weight'].dtype == np.float32
    ds = OpenImagesPartialLabel(data_root=str(tmp_path), ann_file='annotations/train.csv',
                                metainfo=dict(classes=('p', 'q', 'r')))
    assert ds.metainfo['classes'] == ('p', 'q', 'r')


def test_open_images_bom_and_non_utf8_csv(tmp_path):
    build = _oi(tmp_path, '/m/a\n', [('img1', '/m/a', 1)])
    path = tmp_path / 'annotations' / 'train.csv'
    path.write_bytes(b'\xef\xbb\xbf' + path.read_bytes())  # a BOM before the header is not part of ImageID
    assert build().get_data_info(0)['gt_label'] == [0]
    path.write_bytes(HEADER.encode() + b'img\xff,verification,/m/a,1\n')
    assert _message(build) == (f'OpenImagesPartialLabel: {path} near line 1 is not UTF-8 (invalid start byte); '
                               'expected a UTF-8 CSV file')


def test_open_images_file_messages(tmp_path):
    path = tmp_path / 'annotations' / 'train.csv'
    classes = tmp_path / 'annotations' / 'classes.txt'
    build = _oi(tmp_path, '/m/a\n', [('img1', '/m/a', 1)], header='ImageID,Source,LabelName\n')
    assert _message(build) == (f"OpenImagesPartialLabel: {path} lacks the column(s) ['Confidence']; expected "
                               'ImageID,Source,LabelName,Confidence')
    build = _oi(tmp_path, '/m/a\n', [('img1', '/m/a', 2)])
    assert _message(build) == (f"OpenImagesPartialLabel: {path} line 2 (ImageID img1, LabelName /m/a) has "
                               "Confidence '2'; expected a number in [0, 1] (1 = verified present, 0 = verified "
                               'absent)')
    build = _oi(tmp_path, '/m/a\n/m/b\n/m/c\n/m/d\n', [('img1', f'/m/{x}', 1) for x in 'wxyz'])
    assert _message(build) == (f"OpenImagesPartialLabel: none of the 4 label MIDs of {path} (e.g. ['/m/w', "
                               f"'/m/x', '/m/y']) is among the 4 classes of {classes} (e.g. ['/m/a', '/m/b', "
                               "'/m/c']); expected the classes file of the same Open Images version")
    build = _oi(tmp_path, '/m/a\n', [])
    assert _message(build) == (f'OpenImagesPartialLabel: {path} has no annotation row; expected a header and '
                               'rows ImageID,Source,LabelName,Confidence')
    build = _oi(tmp_path, '\n', [('img1', '/m/a', 1)])
    assert _message(build) == (f"OpenImagesPartialLabel: {classes} is empty; expected one label MID (or a "
                               "'LabelName,DisplayName' CSV row) per line")
    build = _oi(tmp_path, 'LabelName,DisplayName\n', [('img1', '/m/a', 1)])
    assert _message(build) == (f'OpenImagesPartialLabel: {classes} has a header but no class; expected one '
                               'label MID per line')
    build = _oi(tmp_path, '/m/a\n/m/a,Again\n', [('img1', '/m/a', 1)])
    assert _message(build) == (f"OpenImagesPartialLabel: {classes} lines 1 and 2 both give the label MID "
                               "'/m/a'; expected each label MID once")
    message = _message(lambda: OpenImagesPartialLabel(data_root=str(tmp_path), ann_file='annotations/train.csv',
                                                      data_prefix='nowhere'), FileNotFoundError)
    assert message.startswith(f"OpenImagesPartialLabel: missing '{tmp_path / 'nowhere'}'. Expected layout")
    assert 'data/openimages/\n    annotations/classes.txt' in message


def test_open_images_conflict_warning_names_the_first_pair(tmp_path, monkeypatch):
    warnings = []

    class Logger:
        def warning(self, msg):
            warnings.append(msg)

    monkeypatch.setattr(open_images_module.MMLogger, 'get_current_instance', lambda: Logger())
    build = _oi(tmp_path, '/m/a\n/m/b\n', [('img1', '/m/a', 1), ('img1', '/m/a', 0), ('img2', '/m/b', 0),
                                           ('img2', '/m/b', 1)])
    ds = build()
    path = tmp_path / 'annotations' / 'train.csv'
    assert ds.label_conflicts == [('img1', '/m/a', 2, 3), ('img2', '/m/b', 4, 5)]
    assert warnings == [f'OpenImagesPartialLabel: 2 (image, class) pair(s) of {path} are marked both verified '
                        'present and verified absent, e.g. ImageID img1 LabelName /m/a on lines 2 and 3; present '
                        'wins (target 1, weight 1)']


# ------------------------------------------------------------ nus_wide.py
from mmdet_asl.datasets import NUSWIDEMultiLabel  # noqa: E402

NUS = 'NUSWIDEMultiLabel'


def _nus(root, paths, columns, concepts=('sky', 'dog'), official=None):
    """A NUS-WIDE layout: ``columns[c]`` is the 0/1 label text of concept ``c`` (one line per image).

    ``official`` maps 'Train'/'Test' to (paths, columns) for the official split files instead.
    """
    (root / 'ImageList').mkdir(parents=True, exist_ok=True)
    (root / 'Flickr').mkdir(exist_ok=True)
    (root / 'Concepts81.txt').write_text(''.join(c + '\n' for c in concepts))
    (root / 'ImageList' / 'Imagelist.txt').write_text(''.join(p + '\n' for p in paths))
    (root / 'Groundtruth' / 'AllLabels').mkdir(parents=True, exist_ok=True)
    for concept, text in columns.items():
        (root / 'Groundtruth' / 'AllLabels' / f'Labels_{concept}.txt').write_text(text)
    for tag, (tag_paths, tag_columns) in (official or {}).items():
        (root / 'ImageList' / f'{tag}Imagelist.txt').write_text(''.join(p + '\n' for p in tag_paths))
        (root / 'Groundtruth' / 'TrainTestLabels').mkdir(parents=True, exist_ok=True)
        for concept, text in tag_columns.items():
            (root / 'Groundtruth' / 'TrainTestLabels' / f'Labels_{concept}_{tag}.txt').write_text(text)
    return lambda **kw: NUSWIDEMultiLabel(data_root=str(root), **kw)


def _samples(ds):
    return [(ds.get_data_info(i)['img_path'], ds.get_data_info(i)['gt_label']) for i in range(len(ds))]


def test_nus_argument_messages_and_bounds(tmp_path):
    assert _message(lambda: NUSWIDEMultiLabel(data_root=str(tmp_path), split='val'), ValueError) == (
        f"{NUS}: split must be 'train' or 'test', got 'val'")
    for ratio in (0, 1, 1.5):  # (0, 1) is open at both ends
        assert _message(lambda: NUSWIDEMultiLabel(data_root=str(tmp_path), train_ratio=ratio), ValueError) == (
            f'{NUS}: train_ratio must be in (0, 1), got {ratio}')


def test_nus_labels_paths_kwargs_and_no_annotation_file(tmp_path):
    # image 2 has no positive concept: dropped by default, kept with drop_unlabeled=False
    build = _nus(tmp_path, ['a\\x.jpg', 'b/y.jpg', 'c.jpg'], {'sky': '1\n0\n0\n', 'dog': '1\n1\n0\n'})
    flickr = tmp_path / 'Flickr'
    ds = build(split='test', train_ratio=0.01)  # round(0.01 * 2) = 0 train images: both are test images
    assert _samples(ds) == [(str(flickr / 'a/x.jpg'), [0, 1]), (str(flickr / 'b/y.jpg'), [1])]
    assert ds.metainfo['classes'] == ('sky', 'dog')
    assert ds.ann_file == ''  # no single annotation file is read
    ds = build(split='test', train_ratio=0.01, drop_unlabeled=False, metainfo=dict(classes=('S', 'D')),
               test_mode=True)
    assert [p for p, _ in _samples(ds)] == [str(flickr / x) for x in ('a/x.jpg', 'b/y.jpg', 'c.jpg')]
    assert _samples(ds)[2][1] == []
    assert ds.metainfo['classes'] == ('S', 'D') and ds.test_mode is True


def test_nus_random_split_rule_and_default_seed(tmp_path):
    n = 6
    build = _nus(tmp_path, [f'{i}.jpg' for i in range(n)], {'sky': '1\n' * n, 'dog': '0\n' * n})
    names = {}
    for seed in (None, 0, 1):
        kw = {} if seed is None else dict(split_seed=seed)
        train = [p.rsplit('/', 1)[1] for p, _ in _samples(build(split='train', train_ratio=0.5, **kw))]
        test = [p.rsplit('/', 1)[1] for p, _ in _samples(build(split='test', train_ratio=0.5, **kw))]
        # the first round(0.5 * 6) = 3 of the seeded permutation are train, kept in image-list order
        order = np.random.default_rng(0 if seed is None else seed).permutation(n)
        assert train == [f'{i}.jpg' for i in sorted(order[:3])]
        assert test == [f'{i}.jpg' for i in sorted(order[3:])]
        names[seed] = train
    assert names[None] == names[0] != names[1]  # default seed is 0; seeds 0 and 1 give other splits here


def test_nus_official_split_files(tmp_path):
    build = _nus(tmp_path, ['unused.jpg'], {}, official={
        'Train': (['t1.jpg', 't2.jpg'], {'sky': '1\n0\n', 'dog': '0\n1\n'}),
        'Test': (['v1.jpg'], {'sky': '1\n', 'dog': '1\n'})})
    flickr = tmp_path / 'Flickr'
    assert _samples(build(split_mode='official')) == [(str(flickr / 't1.jpg'), [0]), (str(flickr / 't2.jpg'), [1])]
    assert _samples(build(split_mode='official', split='test')) == [(str(flickr / 'v1.jpg'), [0, 1])]


def test_nus_label_matrix_file(tmp_path):
    build = _nus(tmp_path, ['a.jpg'], {})
    flickr = str(tmp_path / 'Flickr' / 'a.jpg')
    (tmp_path / 'one.txt').write_text('0 1\n')  # one image: still one row of two columns
    assert _samples(build(label_file='one.txt', split='test', train_ratio=0.01)) == [(flickr, [1])]
    np.save(tmp_path / 'm.npy', np.array([[1, 1]]))
    assert _samples(build(label_file='m.npy', split='test', train_ratio=0.01)) == [(flickr, [0, 1])]
    path = tmp_path / 'half.txt'
    path.write_text('yes 1\n')  # not a number
    message = _message(lambda: build(label_file='half.txt'))
    assert message.startswith(f'{NUS}: cannot read the label matrix {path}: ')
    assert message.endswith('; expected rows of 0/1, one row per image and one column per concept')
    path = tmp_path / 'two.txt'
    path.write_text('2 1\n')
    assert _message(lambda: build(label_file='two.txt')) == (
        f'{NUS}: {path} must be a 2-D matrix of 0/1, got 2 at row 0, column 0 (1 such values)')
    path = tmp_path / 'soft.txt'
    path.write_text('1 0.5\n')  # an integer parse would read 0.5 as 0
    assert _message(lambda: build(label_file='soft.txt')) == (
        f'{NUS}: {path} must be a 2-D matrix of 0/1, got 0.5 at row 0, column 1 (1 such values)')
    np.save(tmp_path / 'soft.npy', np.array([[0.5, 1.0]]))
    assert 'got 0.5 at row 0, column 0' in _message(lambda: build(label_file='soft.npy'))
    np.save(tmp_path / 'flat.npy', np.array([1, 0]))
    assert _message(lambda: build(label_file='flat.npy')) == (
        f"{NUS}: {tmp_path / 'flat.npy'} must be a 2-D matrix of 0/1, got shape (2,)")
    path = tmp_path / 'wide.txt'
    path.write_text('0 1 1\n')
    assert _message(lambda: build(label_file='wide.txt')) == (
        f"{NUS}: the label matrix {path} is (1, 3), expected (1 images in {tmp_path / 'ImageList/Imagelist.txt'}, "
        f"2 concepts in {tmp_path / 'Concepts81.txt'})")
    message = _message(lambda: build(label_file='none.txt'), FileNotFoundError)
    assert message.startswith(f"{NUS}: missing '{tmp_path / 'none.txt'}'. Expected layout")
    assert 'data/nus-wide/\n    ImageList/Imagelist.txt' in message


def test_nus_file_messages(tmp_path):
    build = _nus(tmp_path, ['a.jpg', 'b.jpg'], {'sky': '1\n0\n', 'dog': '1\n'})
    labels = tmp_path / 'Groundtruth' / 'AllLabels'
    assert _message(build) == (f'{NUS}: {labels / "Labels_dog.txt"} has 1 labels; expected 2, one per image of '
                               'the image list')
    (labels / 'Labels_dog.txt').write_text('\n')
    assert _message(build) == f'{NUS}: {labels / "Labels_dog.txt"} is empty; expected one 0/1 label per line'
    (labels / 'Labels_dog.txt').unlink()
    message = _message(build, FileNotFoundError)
    assert message.startswith(f"{NUS}: missing '{labels / 'Labels_dog.txt'}'. Expected layout")
    assert 'data/nus-wide/\n    ImageList/Imagelist.txt' in message
    (labels / 'Labels_dog.txt').write_text('0\n0\n')
    (labels / 'Labels_sky.txt').write_text('0\n0\n')
    assert _message(build) == (f"{NUS}: no samples: 2 images in {tmp_path / 'ImageList/Imagelist.txt'}, 0 with a "
                               "positive concept, none left for split='train'")
    concepts = tmp_path / 'Concepts81.txt'
    concepts.write_text('sky\ndog\nsky\n')
    assert _message(build) == (f"{NUS}: {concepts} lines 1 and 3 both give the concept 'sky'; expected each "
                               'concept once')
    concepts.write_text('\n')
    assert _message(build) == f'{NUS}: {concepts} is empty; expected one concept name per line'
    concepts.write_text('sky\ndog\n')
    (tmp_path / 'ImageList' / 'Imagelist.txt').write_text(' \n')
    assert _message(build) == (f"{NUS}: {tmp_path / 'ImageList/Imagelist.txt'} is empty; expected one relative "
                               'image path per line')
    (tmp_path / 'ImageList' / 'Imagelist.txt').unlink()
    message = _message(build, FileNotFoundError)
    assert message.startswith(f"{NUS}: missing '{tmp_path / 'ImageList/Imagelist.txt'}'. Expected layout")
    assert 'data/nus-wide/\n    ImageList/Imagelist.txt' in message

"""tools/dataset_converters/make_longtail_canvases.py: Zipf-like class frequency, real images, checked ratio."""
import json
import os
import os.path as osp
import sys

import numpy as np
import pytest
from PIL import Image

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


# ----------------------------------------------------------------------------------------------- detection
FASHION = '/usr/share/datasets/fashion-mnist'
needs_fashion = pytest.mark.skipif(not osp.isdir(FASHION), reason='Debian dataset-fashion-mnist is not installed '
                                   '(tools/install_system_deps.sh)')


def write_fake_source(folder, n):
    """Fashion-MNIST-shaped IDX files: n images per split, labels cycling 0..9, a filled square per image."""
    import gzip
    import struct

    import make_fashion_canvases as mfc
    folder.mkdir(parents=True, exist_ok=True)
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    images[:, 6:22, 6:22] = 200
    for split in ('train', 'test'):
        img_file, lbl_file = mfc.FILES[split]
        with gzip.open(folder / img_file, 'wb') as f:
            f.write(struct.pack('>IIII', 0x0803, n, 28, 28) + images.tobytes())
        with gzip.open(folder / lbl_file, 'wb') as f:
            f.write(struct.pack('>II', 0x0801, n) + (np.arange(n) % 10).astype(np.uint8).tobytes())
    return folder


def test_zipf_counts_by_hand():
    # rank r gets round(head / r^s); the rarest floor(head / C^s); order[r - 1] is the class of rank r.
    counts = mlc.zipf_counts(4, 1.0, 12, order=[2, 0, 3, 1])
    assert counts.tolist() == [6, 3, 12, 4]  # ranks 1..4: 12, 6, 4, 3
    assert mlc.zipf_counts(3, 2.0, 20, order=[0, 1, 2]).tolist() == [20, 5, 2]  # 20/9 = 2.2 -> floor 2
    assert mlc.zipf_counts(3, 2.0, 26, order=[0, 1, 2]).tolist() == [26, 6, 2]  # 26/4 = 6.5 -> 6; 26/9 = 2.9 -> 2
    assert mlc.rarest_count(2000, 10, 1.7) == 39  # 2000 / 10^1.7 = 39.9


def test_frequency_groups_by_hand():
    assert mlc.frequency_groups([1, 2, 3, 6, 7, 100], rare_max=2, common_max=6) == ['r', 'r', 'c', 'c', 'f', 'f']


def test_place_items_puts_every_source_on_one_canvas_without_overlap():
    rng = np.random.default_rng(0)
    images = np.zeros((40, 28, 28), dtype=np.uint8)
    images[:, 4:24, 8:20] = np.arange(1, 41, dtype=np.uint8)[:, None, None] * 5  # item i has value 5 (i + 1)
    labels = np.arange(40) % 10
    sources = rng.permutation(40)
    laid_out = mlc.place_items(rng, images, labels, sources, 40, 2, 4, (0.6, 1.1))
    seen = [src for _, placed in laid_out for _, _, src in placed]
    assert sorted(seen) == list(range(40))
    for canvas, placed in laid_out:
        assert 1 <= len(placed) <= 4
        for cls, (x, y, w, h), src in placed:
            assert cls == labels[src] and 0 <= x and 0 <= y and x + w <= 40 and y + h <= 40
            # the box holds this item (its own brightness inside; the bilinear resize only softens the rim)
            assert canvas[y:y + h, x:x + w].max() == 5 * (src + 1) and canvas[y + h // 2, x + w // 2] == 5 * (src + 1)
        covered = np.zeros_like(canvas, dtype=bool)
        for _, (x, y, w, h), _ in placed:
            assert not covered[max(y - 1, 0):y + h + 1, max(x - 1, 0):x + w + 1].any()  # 1 px gap
            covered[y:y + h, x:x + w] = True
        assert not canvas[~covered].any()  # nothing drawn outside the boxes


def read_set(out):
    sets = {split: json.load(open(osp.join(out, 'annotations', f'instances_{split}.json'))) for split in
            ('train', 'test')}
    return sets, json.load(open(osp.join(out, 'annotations', 'longtail_summary.json')))


def check_boxes_against_pixels(out, split, coco, limit=None):
    """Each box lies inside its canvas and is the tight extent of a drawn item: every edge line of the box holds
    a non-background pixel, the 1 px ring around it is background, and no pixel is drawn outside the boxes."""
    by_image = {}
    for ann in coco['annotations']:
        by_image.setdefault(ann['image_id'], []).append(ann['bbox'])
    for img in coco['images'][:limit]:
        canvas = np.asarray(Image.open(osp.join(out, split, img['file_name'])))
        assert canvas.shape == (img['height'], img['width'])
        covered = np.zeros(canvas.shape, dtype=bool)
        for x, y, w, h in by_image[img['id']]:
            assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= img['width'] and y + h <= img['height']
            crop = canvas[y:y + h, x:x + w]
            assert crop[0].any() and crop[-1].any() and crop[:, 0].any() and crop[:, -1].any()
            ring = canvas[max(y - 1, 0):y + h + 1, max(x - 1, 0):x + w + 1].copy()
            ring[(y > 0):(y > 0) + h, (x > 0):(x > 0) + w] = 0
            assert not ring.any()
            covered[y:y + h, x:x + w] = True
        assert not canvas[~covered].any()


@needs_fashion
def test_detection_set_from_the_real_images(tmp_path):
    import make_fashion_canvases as mfc

    from mmdet_asl.utils.preflight import coco_file_problems
    out, ratio, per_class = str(tmp_path / 'det'), 55.0, 3
    argv = ['--task', 'detection', '--out', out, '--train-head', '60', '--test-per-class', str(per_class),
            '--min-ratio', str(ratio), '--seed', '3']
    assert mlc.main(argv) == 0
    sets, summary = read_set(out)
    train = np.bincount([a['category_id'] - 1 for a in sets['train']['annotations']], minlength=10)
    test = np.bincount([a['category_id'] - 1 for a in sets['test']['annotations']], minlength=10)
    assert train.min() >= 1 and train.max() / train.min() >= ratio
    assert test.min() >= per_class
    # the groups follow the recorded thresholds and the training counts, in the categories and the summary
    rare_max, common_max = summary['rare_max'], summary['common_max']
    assert rare_max < common_max
    for split in ('train', 'test'):
        for cat in sets[split]['categories']:
            n = train[cat['id'] - 1]
            assert cat['frequency'] == ('r' if n <= rare_max else 'c' if n <= common_max else 'f')
            assert cat['instance_count'] == n
            assert cat['image_count'] == len({a['image_id'] for a in sets['train']['annotations']
                                              if a['category_id'] == cat['id']})
    for entry in summary['classes']:
        assert entry['train_instances'] == train[entry['id'] - 1] and entry['test_instances'] == test[entry['id'] - 1]
    names = {c['name']: c['frequency'] for c in sets['train']['categories']}
    assert {g: sorted(v) for g, v in summary['groups'].items()} == \
        {g: sorted(n for n, f in names.items() if f == g) for g in ('f', 'c', 'r')}
    # the class of each instance is the label of its source image, each source used once, from its own split
    for split in ('train', 'test'):
        labels = mfc.load_split(FASHION, split)[1]
        sources = [a['source_index'] for a in sets[split]['annotations']]
        assert len(set(sources)) == len(sources)
        assert all(labels[a['source_index']] == a['category_id'] - 1 for a in sets[split]['annotations'])
        assert coco_file_problems(sets[split], osp.join(out, split), out, need_info=True) == []
        check_boxes_against_pixels(out, split, sets[split])
    # same arguments: up to date; the same seed elsewhere: byte-identical files; another seed: another set
    assert mlc.main(argv) == 0
    again = str(tmp_path / 'again')
    assert mlc.main(argv[:2] + ['--out', again] + argv[4:]) == 0
    files = sorted(os.path.relpath(osp.join(d, f), out) for d, _, fs in os.walk(out) for f in fs)
    assert files == sorted(os.path.relpath(osp.join(d, f), again) for d, _, fs in os.walk(again) for f in fs)
    for name in files:
        assert open(osp.join(out, name), 'rb').read() == open(osp.join(again, name), 'rb').read(), name
    other = str(tmp_path / 'other')
    assert mlc.main(argv[:2] + ['--out', other] + argv[4:-1] + ['4']) == 0
    assert read_set(other)[0]['train']['annotations'] != sets['train']['annotations']


@needs_fashion
def test_detection_set_loads_in_mmdetection(tmp_path):
    import make_fashion_canvases as mfc

    from mmdet.datasets import CocoDataset
    from mmdet.utils import register_all_modules
    register_all_modules()
    out = str(tmp_path / 'det')
    assert mlc.main(['--task', 'detection', '--out', out, '--train-head', '60', '--test-per-class', '2']) == 0
    coco = json.load(open(osp.join(out, 'annotations', 'instances_test.json')))
    ds = CocoDataset(data_root=out, ann_file='annotations/instances_test.json', data_prefix=dict(img='test/'),
                     metainfo=dict(classes=mfc.CLASSES), pipeline=[], test_mode=True)
    assert len(ds) == len(coco['images'])
    first = [a for a in coco['annotations'] if a['image_id'] == coco['images'][0]['id']]
    assert [i['bbox_label'] for i in ds[0]['instances']] == [a['category_id'] - 1 for a in first]
    assert [i['bbox'] for i in ds[0]['instances']] == [[x, y, x + w, y + h] for x, y, w, h in
                                                       (a['bbox'] for a in first)]


@pytest.mark.parametrize('argv, says', [
    (['--task', 'detection', '--num-train', '10'], '--num-train applies to --task multilabel'),
    (['--task', 'detection', '--num-test', '10'], '--num-test applies to --task multilabel'),
    (['--train-head', '100'], '--train-head applies to --task detection'),
    (['--test-per-class', '5'], '--test-per-class applies to --task detection'),
    (['--task', 'detection', '--train-head', '0'], '--train-head must be >= 1'),
    (['--task', 'detection', '--train-head', '40'], '--train-head 40 with --exponent 1.7 leaves the rarest'),
    (['--task', 'detection', '--exponent', '1.2'], '< --min-ratio 50.0'),
    (['--task', 'detection', '--train-head', '60', '--min-ratio', '61'], '60/1 = 60.0 < --min-ratio 61.0'),
    (['--task', 'detection', '--test-per-class', '0'], '--test-per-class must be >= 1'),
    (['--task', 'detection', '--rare-max', '-1'], '--rare-max must be >= 0'),
    (['--task', 'detection', '--rare-max', '10', '--common-max', '10'],
     '--common-max (10) must be greater than --rare-max (10)'),
    (['--task', 'detection', '--exponent', 'nan'], '--exponent must be a finite number > 0'),
    (['--task', 'segmentation'], "--task: invalid choice: 'segmentation'"),
])
def test_bad_options_are_refused_naming_them(argv, says, capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        mlc.main(argv + ['--out', str(tmp_path / 'never')])
    assert info.value.code == 2 and says in capsys.readouterr().err
    assert not osp.exists(tmp_path / 'never')


@pytest.mark.parametrize('option, value, split', [('--train-head', '60', 'train'),
                                                  ('--test-per-class', '5', 'test')])
def test_more_instances_than_source_images_is_refused(tmp_path, capsys, option, value, split):
    src = write_fake_source(tmp_path / 'src', n=40)  # 4 images of each class per split
    out = tmp_path / 'det'
    argv = ['--task', 'detection', '--src', str(src), '--out', str(out), '--train-head', '4',
            '--test-per-class', '4', '--exponent', '0.5', '--min-ratio', '1']
    argv[argv.index(option) + 1] = value
    assert mlc.main(argv) == 2
    err = capsys.readouterr().err
    assert f'{option} {value} exceeds the 4 {split} images of class' in err and not out.exists()


def test_detection_on_a_small_source(tmp_path):
    # the ratio check and the exact counts do not depend on the real images: 4 per class suffice here
    src = write_fake_source(tmp_path / 'src', n=40)
    out = str(tmp_path / 'det')
    assert mlc.main(['--task', 'detection', '--src', str(src), '--out', out, '--train-head', '4',
                     '--test-per-class', '4', '--exponent', '0.5', '--min-ratio', '1', '--rare-max', '1',
                     '--common-max', '2']) == 0
    sets, summary = read_set(out)
    train = np.bincount([a['category_id'] - 1 for a in sets['train']['annotations']], minlength=10)
    # ranks 1..10 get round(4 / sqrt(r)): 4, 3, 2, 2, 2, 2, 2, 1, 1 and floor(4 / sqrt(10)) = 1
    assert sorted(train.tolist(), reverse=True) == [4, 3, 2, 2, 2, 2, 2, 1, 1, 1]
    assert summary['groups'] and sum(len(v) for v in summary['groups'].values()) == 10
    assert [len(summary['groups'][g]) for g in ('f', 'c', 'r')] == [2, 5, 3]
    for split in ('train', 'test'):
        check_boxes_against_pixels(out, split, sets[split])


def test_detection_rebuilds_only_what_is_stale(tmp_path, capsys):
    src = write_fake_source(tmp_path / 'src', n=40)
    out = tmp_path / 'det'
    argv = ['--task', 'detection', '--src', str(src), '--out', str(out), '--train-head', '4', '--test-per-class',
            '2', '--exponent', '0.5', '--min-ratio', '1']
    assert mlc.main(argv) == 0 and 'is up to date' not in capsys.readouterr().out
    assert mlc.main(argv) == 0 and 'is up to date' in capsys.readouterr().out
    # another option, a missing canvas, an instances file of other options, a broken summary: rebuilt
    assert mlc.main(argv[:-5] + ['3'] + argv[-4:]) == 0 and 'is up to date' not in capsys.readouterr().out
    assert len(read_set(str(out))[0]['test']['annotations']) == 30
    assert mlc.main(argv) == 0 and 'is up to date' not in capsys.readouterr().out
    os.remove(out / 'test' / '000000.png')
    assert mlc.main(argv) == 0 and 'is up to date' not in capsys.readouterr().out
    assert (out / 'test' / '000000.png').is_file()
    path = out / 'annotations' / 'instances_test.json'
    coco = json.loads(path.read_text())
    coco['info']['test_per_class'] = 3
    path.write_text(json.dumps(coco))
    assert mlc.main(argv) == 0 and 'is up to date' not in capsys.readouterr().out
    assert json.loads(path.read_text())['info']['test_per_class'] == 2
    (out / 'annotations' / 'longtail_summary.json').write_text('{"task": ')
    assert mlc.main(argv) == 0 and 'is up to date' not in capsys.readouterr().out
    assert mlc.main(argv) == 0 and 'is up to date' in capsys.readouterr().out

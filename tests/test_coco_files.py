"""Malformed COCO annotation files are refused before training (tools/train.py's pre-flight check) and by
CocoMultiLabel, naming the file, the entry and what is wrong."""
import json
import os.path as osp

import pytest

import mmdet_asl  # noqa: F401
from mmdet_asl.datasets import CocoMultiLabel
from mmdet_asl.datasets.checks import DatasetFileError
from mmdet_asl.utils import MissingFilesError, check_config_files
from mmdet_asl.utils.preflight import MalformedFilesError, malformed_config_files


def coco(**changes):
    """Two images, two categories, two annotations: a valid file; ``changes`` replace top-level keys."""
    data = dict(info=dict(description='test'),
                images=[dict(id=1, file_name='a.png', width=8, height=8),
                        dict(id=2, file_name='b.png', width=8, height=8)],
                categories=[dict(id=1, name='cat'), dict(id=2, name='dog')],
                annotations=[dict(id=1, image_id=1, category_id=1, bbox=[0, 0, 4, 4], area=16, iscrowd=0),
                             dict(id=2, image_id=2, category_id=2, bbox=[1, 1, 4, 4], area=16, iscrowd=0)])
    data.update(changes)
    return data


def layout(tmp_path, data):
    root = tmp_path / 'data'
    (root / 'annotations').mkdir(parents=True)
    (root / 'images').mkdir()
    path = root / 'annotations' / 'train.json'
    path.write_text(json.dumps(data))
    return root, path


def detection_cfg(root, evaluator=True, **top):
    dataset = dict(type='CocoDataset', data_root=str(root) + '/', ann_file='annotations/train.json',
                   data_prefix=dict(img='images/'))
    cfg = dict(model=dict(), train_dataloader=dict(dataset=dataset), val_dataloader=dict(dataset=dataset),
               val_evaluator=dict(type='CocoMetric', ann_file=str(root) + '/annotations/train.json', metric='bbox')
               if evaluator else None)
    cfg.update(top)
    return cfg


def refused(cfg, path, *fragments):
    with pytest.raises(MalformedFilesError) as info:
        check_config_files(cfg)
    message = str(info.value)
    assert isinstance(info.value, MissingFilesError) and isinstance(info.value, ValueError)
    assert f'{path} ' in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_evaluator_file_without_info_is_refused_before_training(tmp_path):
    data = coco()
    del data['info']
    root, path = layout(tmp_path, data)
    # the failure the check prevents: pycocotools' loadRes (CocoMetric's evaluation) needs dataset['info']
    from pycocotools.coco import COCO
    with pytest.raises(KeyError, match='info'):
        COCO(str(path)).loadRes([dict(image_id=1, category_id=1, bbox=[0, 0, 4, 4], score=0.9)])
    message = refused(detection_cfg(root), path, 'has no "info" key', 'KeyError', '"info": {}')
    assert 'val_dataloader.dataset.ann_file' in message or 'val_evaluator.ann_file' in message
    # a training file without an evaluator needs no info
    check_config_files(detection_cfg(root, evaluator=False))
    path.write_text(json.dumps(coco(info={})))
    check_config_files(detection_cfg(root))
    COCO(str(path)).loadRes([dict(image_id=1, category_id=1, bbox=[0, 0, 4, 4], score=0.9)])


def test_train_tool_refuses_before_building_the_runner(tmp_path, monkeypatch):
    import sys
    sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools'))
    import train as train_tool

    def no_runner(*args, **kwargs):
        raise AssertionError('the Runner was built although a file is malformed')

    monkeypatch.setattr(train_tool.Runner, 'from_cfg', no_runner)
    data = coco()
    del data['info']
    root, path = layout(tmp_path, data)
    config = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs', 'demo',
                      'fcos_tresnet_focal_deepforest.py')
    options = [f'val_evaluator.ann_file={path}', 'model.backbone.init_cfg=None']
    for loader in ('train_dataloader', 'val_dataloader'):
        options += [f'{loader}.dataset.data_root={root}/', f'{loader}.dataset.ann_file=annotations/train.json',
                    f'{loader}.dataset.data_prefix.img=images/']
    with pytest.raises(MalformedFilesError, match=r'(?s)1 file\(s\) the config needs are malformed.*"info"'):
        train_tool.main([config, '--work-dir', str(tmp_path / 'work'), '--cfg-options'] + options)


BROKEN = {
    'no file_name': (lambda d: d['images'][1].pop('file_name'), ['images[1] (id 2) has no file_name']),
    'string category id': (lambda d: d['categories'][1].update(id='2'),
                           ["categories[1] has id '2' (str); expected an integer"]),
    'duplicate image id': (lambda d: d['images'][1].update(id=1),
                           ["images[1] repeats image id 1 of images[0] (file_name 'a.png' and 'b.png')",
                            'silently be dropped']),
    'duplicate annotation id': (lambda d: d['annotations'][1].update(id=1),
                                ['annotations[1] repeats annotation id 1 of annotations[0]']),
    'unknown image': (lambda d: d['annotations'][1].update(image_id=7),
                      ['annotations[1] (id 2) has image_id 7, which is not among the images']),
    'unknown category': (lambda d: d['annotations'][0].update(category_id=5),
                         ['annotations[0] (id 1, image_id 1) has category_id 5', '[1, 2]']),
    'not an object': (lambda d: d.clear(), []),
}


@pytest.mark.parametrize('case', sorted(BROKEN))
def test_malformed_entries_are_named(tmp_path, case):
    data = coco()
    change, fragments = BROKEN[case]
    change(data)
    root, path = layout(tmp_path, data if data else [1, 2])
    refused(detection_cfg(root), path, *fragments)
    with pytest.raises(DatasetFileError) as info:
        CocoMultiLabel(ann_file='annotations/train.json', data_root=str(root), data_prefix='images')
    assert str(path) in str(info.value) and all(f in str(info.value) for f in fragments), str(info.value)


def test_empty_and_invalid_json_are_named(tmp_path):
    root, path = layout(tmp_path, coco())
    path.write_text('')
    refused(detection_cfg(root), path, 'is empty')
    path.write_text('{"images": [')
    refused(detection_cfg(root), path, 'is not valid JSON', 'line 1')


def test_many_bad_entries_are_counted(tmp_path):
    images = [dict(id=i, width=8, height=8) for i in range(12)]  # no file_name at all
    root, path = layout(tmp_path, coco(images=images, annotations=[]))
    message = refused(detection_cfg(root), path, 'images[0] (id 0) has no file_name', '... and 7 more')
    assert 'images[5]' not in message  # five named, then the count


@pytest.mark.parametrize('file_name', ['../../x.png', '/etc/passwd', 'sub/../../../x.png'])
def test_file_name_outside_data_root_needs_an_explicit_option(tmp_path, file_name):
    data = coco()
    data['images'][0]['file_name'] = file_name
    root, path = layout(tmp_path, data)
    # where the file name leads, computed by hand from <tmp>/data/images/
    expected = {'../../x.png': str(tmp_path / 'x.png'), '/etc/passwd': '/etc/passwd',
                'sub/../../../x.png': str(tmp_path / 'x.png')}[file_name]
    fragments = [f'images[0] (id 1) has file_name {file_name!r}, which leads to {expected}',
                 f'outside data_root {root}', 'allow_outside_data_root']
    refused(detection_cfg(root), path, *fragments)
    check_config_files(detection_cfg(root, allow_outside_data_root=True))
    with pytest.raises(DatasetFileError) as info:
        CocoMultiLabel(ann_file='annotations/train.json', data_root=str(root), data_prefix='images')
    assert all(f in str(info.value) for f in fragments), str(info.value)
    ds = CocoMultiLabel(ann_file='annotations/train.json', data_root=str(root), data_prefix='images',
                        allow_outside_data_root=True)
    assert osp.normpath(ds.get_data_info(0)['img_path']) == expected
    # CocoMultiLabel's own option counts for the pre-flight check of its dataset too
    cfg = detection_cfg(root, evaluator=False)
    for split in ('train', 'val'):
        cfg[f'{split}_dataloader']['dataset'].update(type='CocoMultiLabel', allow_outside_data_root=True,
                                                    data_prefix='images')
    assert malformed_config_files(cfg) == []


def test_inside_data_root_is_accepted(tmp_path):
    data = coco()
    data['images'][0]['file_name'] = 'sub/../a.png'  # stays in the image folder
    data['images'][1]['file_name'] = '../annotations/b.png'  # leaves the image folder, not data_root
    root, _ = layout(tmp_path, data)
    check_config_files(detection_cfg(root))
    ds = CocoMultiLabel(ann_file='annotations/train.json', data_root=str(root), data_prefix='images')
    assert [ds.get_data_info(i)['gt_label'] for i in range(2)] == [[0], [1]]

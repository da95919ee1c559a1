"""Behaviours of the pre-flight check that mutation testing (tools/misc/run_mutation.py preflight) found
unchecked: the message of each malformed COCO entry kind, non-object entries, where many problems are cut,
the config keys and checks a file shared by several config entries gets, and the how-to of missing weights.
Every expected message is written out by hand from the file the test builds."""
import json
import os.path as osp

import pytest

from mmdet_asl.utils.preflight import (
    COCO_HOWTO,
    DATA_HOWTO,
    MADE_BY,
    MAX_PROBLEMS,
    NO_INFO,
    MalformedFilesError,
    MissingFilesError,
    check_config_files,
    coco_file_problems,
    malformed_config_files,
    missing_config_files,
    read_json_file,
)


def coco(**changes):
    data = dict(info={}, images=[dict(id=1, file_name='a.png')], categories=[dict(id=1, name='cat')],
                annotations=[dict(id=1, image_id=1, category_id=1)])
    data.update(changes)
    return data


def write(tmp_path, data, name='ann.json'):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


# ------------------------------------------------------------------------------- coco_file_problems
def test_a_json_list_is_named_as_a_list():
    assert coco_file_problems([1, 2]) == [
        'holds a JSON list; expected an object with "images", "annotations" and "categories" lists']


def test_entries_that_are_not_objects_are_named():
    assert coco_file_problems(coco(categories=['cat'])) == [
        'categories[0] has id None (NoneType); expected an integer (MMDetection maps labels through integer '
        'category ids)']
    assert coco_file_problems(coco(images=['a.png'])) == ['images[0] has id None; expected an integer image id']
    assert coco_file_problems(coco(annotations=[7])) == [
        'annotations[0] (id None, image_id None) has category_id None, which is not among the categories [1]',
        'annotations[0] (id None) has image_id None, which is not among the images']


def test_a_repeated_category_id_names_both_categories():
    data = coco(categories=[dict(id=1, name='cat'), dict(id=1, name='dog')])
    assert coco_file_problems(data) == ["categories[1] repeats category id 1 ('cat' and 'dog'); expected unique ids"]


def test_every_image_with_a_bad_id_is_listed_and_a_bool_id_is_bad():
    data = coco(images=[dict(id=None, file_name='a.png'), dict(id=True, file_name='b.png'),
                        dict(id=2.5, file_name='c.png')])
    assert coco_file_problems(data) == ['images[0] has id None; expected an integer image id',
                                        'images[1] has id True; expected an integer image id',
                                        'images[2] has id 2.5; expected an integer image id']


def test_problems_are_cut_after_max_problems_entries():
    exactly = coco(categories=[dict(id=str(i), name='c') for i in range(MAX_PROBLEMS)])
    lines = coco_file_problems(exactly)
    assert len(lines) == MAX_PROBLEMS and not any('more such entries' in line for line in lines)
    one_more = coco(categories=[dict(id=str(i), name='c') for i in range(MAX_PROBLEMS + 1)])
    lines = coco_file_problems(one_more)
    assert len(lines) == MAX_PROBLEMS + 1 and lines[-1] == '... and 1 more such entries'


def test_the_file_system_root_as_data_root_holds_every_image(tmp_path):
    assert coco_file_problems(coco(), image_dir=str(tmp_path), root='/') == []


# --------------------------------------------------------------------------- malformed_config_files
def loader(**dataset):
    return dict(dataset=dataset)


def test_a_file_of_several_entries_names_each_key_once(tmp_path):
    path = write(tmp_path, coco(images=[dict(id=1, file_name='')]))
    dataset = dict(type='CocoDataset', ann_file=path, data_root=str(tmp_path))
    metric = dict(type='CocoMetric', ann_file=path)
    cfg = dict(train_dataloader=loader(**dataset), val_evaluator=[metric, metric])
    (keys, found, _), = malformed_config_files(cfg)
    assert found == path
    assert keys == 'train_dataloader.dataset.ann_file, val_evaluator.ann_file'


def test_an_evaluator_file_needs_info_even_when_a_later_dataset_reads_it(tmp_path):
    data = coco()
    del data['info']
    path = write(tmp_path, data)
    cfg = dict(val_evaluator=dict(type='CocoMetric', ann_file=path),
               test_dataloader=loader(type='CocoDataset', ann_file=path, data_root=str(tmp_path)))
    assert malformed_config_files(cfg, loaders=('val', 'test')) == [
        ('val_evaluator.ann_file, test_dataloader.dataset.ann_file', path, [NO_INFO])]


def test_splits_without_a_dataloader_are_skipped(tmp_path):
    path = write(tmp_path, coco(images=[dict(id=1, file_name='')]))
    cfg = dict(train_dataloader=loader(type='CocoDataset', ann_file=path, data_root=str(tmp_path)))
    assert [entry[0] for entry in malformed_config_files(cfg, loaders=('val', 'train'))] == [
        'train_dataloader.dataset.ann_file']


def test_only_coco_datasets_are_read_as_coco_files(tmp_path):
    listing = tmp_path / 'list.txt'
    listing.write_text('a.jpg 1 0\n')
    bad = write(tmp_path, coco(images=[dict(id=1, file_name='')]))
    concat = dict(type='ConcatDataset', datasets=[
        dict(type='VOC2007MultiLabel', ann_file=str(listing), data_root=str(tmp_path)),
        dict(type='mmdet.CocoDataset', ann_file=bad, data_root=str(tmp_path))])
    assert malformed_config_files(dict(train_dataloader=dict(dataset=concat)), loaders=('train', )) == [
        ('train_dataloader.dataset.datasets.1.ann_file', bad,
         ["images[0] (id 1) has no file_name (got ''); expected the image path relative to the image folder"])]


def test_file_names_are_relative_to_an_img_path_prefix(tmp_path):
    # images/../a.png is data_root/a.png: inside data_root
    path = write(tmp_path, coco(images=[dict(id=1, file_name='../a.png')]))
    cfg = dict(train_dataloader=loader(type='CocoDataset', ann_file=path, data_root=str(tmp_path),
                                       data_prefix=dict(img_path='images/')))
    assert malformed_config_files(cfg, loaders=('train', )) == []
    # the same name from data_root itself leads outside it
    cfg['train_dataloader']['dataset']['data_prefix'] = dict(img_path='')
    (_, _, problems), = malformed_config_files(cfg, loaders=('train', ))
    assert problems[0].startswith("images[0] (id 1) has file_name '../a.png', which leads to "
                                  f"{osp.join(osp.dirname(str(tmp_path)), 'a.png')}, outside data_root")


# ---------------------------------------------------------------------------- missing weights' how-to
def howto_of(tmp_path, backbone):
    backbone['init_cfg'] = dict(type='Pretrained', checkpoint=str(tmp_path / 'w.pth'))
    (_, _, howto), = missing_config_files(dict(model=dict(backbone=backbone)), loaders=())
    return howto


def test_an_efficientnet_lite_variant_is_kept_in_the_converter_command(tmp_path):
    howto = howto_of(tmp_path, dict(type='EfficientNetLite', arch='tf_efficientnet_lite2'))
    assert howto.startswith('python tools/model_converters/efficientnet_lite_to_mmdet.py --arch '
                            f'tf_efficientnet_lite2 --out {tmp_path / "w.pth"} ')


def test_timm_model_names_in_the_weight_command(tmp_path):
    assert "timm.create_model('resnet50', pretrained=True)" in howto_of(tmp_path, dict(type='X', arch='resnet50'))
    assert "timm.create_model('<timm model name>', pretrained=True)" in howto_of(tmp_path, dict(type='X'))
    # an arch given as a dict (a custom architecture) is no timm name
    assert "timm.create_model('<timm model name>', pretrained=True)" in howto_of(
        tmp_path, dict(type='X', arch=dict(depth=3)))


def test_the_train_without_option_names_the_whole_init_cfg_key(tmp_path):
    cfg = dict(model=dict(checkpoint=dict(type='X', init_cfg=dict(type='Pretrained',
                                                                  checkpoint=str(tmp_path / 'w.pth')))))
    (key, _, howto), = missing_config_files(cfg, loaders=())
    assert key == 'model.checkpoint.init_cfg.checkpoint'
    assert howto.endswith('--cfg-options model.checkpoint.init_cfg=None')


def test_without_data_root_images_stay_inside_the_image_folder(tmp_path):
    (tmp_path / 'images').mkdir()
    path = write(tmp_path, coco())
    cfg = dict(train_dataloader=loader(type='CocoDataset', ann_file=path,
                                       data_prefix=dict(img=str(tmp_path / 'images'))))
    assert malformed_config_files(cfg, loaders=('train', )) == []


def test_a_file_that_is_not_utf8_is_named_not_raised(tmp_path):
    path = tmp_path / 'ann.json'
    path.write_bytes(b'\xff\xfe{"images": []}')
    data, problem = read_json_file(str(path))
    assert data is None
    assert problem.startswith('is not valid JSON (') and problem.endswith('expected a COCO instances JSON file')


# ------------------------------------------------------------------------------ missing data files
def test_missing_data_keys_of_wrapped_and_plain_datasets(tmp_path):
    root = str(tmp_path / 'd')
    concat = dict(type='ConcatDataset', datasets=[
        dict(type='VOC2007MultiLabel', data_root=root, ann_file='a.txt', data_prefix='imgs/'),
        dict(type='CocoDataset', data_root=root, ann_file='b.json', img_prefix='old/')])
    missing = missing_config_files(dict(train_dataloader=dict(dataset=concat)))  # no val loader: skipped
    assert missing == [
        ('train_dataloader.dataset.datasets.0.ann_file', osp.join(root, 'a.txt'), DATA_HOWTO),
        ('train_dataloader.dataset.datasets.0.data_prefix.img_path', osp.join(root, 'imgs/'), DATA_HOWTO),
        ('train_dataloader.dataset.datasets.1.ann_file', osp.join(root, 'b.json'), COCO_HOWTO),
        ('train_dataloader.dataset.datasets.1.img_prefix', osp.join(root, 'old/'), COCO_HOWTO)]


def test_missing_evaluator_files_in_a_list_and_in_a_converter_folder(tmp_path):
    made = str(tmp_path / 'fashion_canvas' / 'val.json')  # the converter writes its JSON files at the top
    plain = str(tmp_path / 'elsewhere' / 'val.json')
    cfg = dict(val_evaluator=[dict(type='CocoMetric', ann_file=made), dict(type='CocoMetric', ann_file=plain)])
    assert missing_config_files(cfg) == [('val_evaluator.ann_file', made, MADE_BY['fashion_canvas']),
                                         ('val_evaluator.ann_file', plain, COCO_HOWTO)]


def test_only_the_loaders_asked_for_are_checked(tmp_path):
    cfg = dict(train_dataloader=loader(type='CocoDataset', ann_file=str(tmp_path / 'train.json')),
               test_dataloader=loader(type='CocoDataset', ann_file=str(tmp_path / 'test.json')))
    with pytest.raises(MissingFilesError) as info:
        check_config_files(cfg, loaders=('test', ))
    assert str(info.value) == (f'1 file(s) the config needs are missing:\n  {tmp_path / "test.json"}   (config key '
                               f'test_dataloader.dataset.ann_file)\n    how to get it: {COCO_HOWTO}')


def test_malformed_files_say_key_or_keys_and_each_unreadable_file_is_listed(tmp_path):
    empty = tmp_path / 'empty.json'
    empty.write_text('')
    shared = tmp_path / 'shared.json'
    shared.write_text('')
    cfg = dict(train_dataloader=loader(type='CocoDataset', ann_file=str(empty), data_root=str(tmp_path)),
               val_dataloader=loader(type='CocoDataset', ann_file=str(shared), data_root=str(tmp_path)),
               val_evaluator=dict(type='CocoMetric', ann_file=str(shared)))
    with pytest.raises(MalformedFilesError) as info:
        check_config_files(cfg)
    problem = 'is empty; expected a COCO instances JSON file'
    assert str(info.value) == (
        '2 file(s) the config needs are malformed:\n'
        f'  {empty}   (config key train_dataloader.dataset.ann_file):\n    {empty} {problem}\n'
        f'  {shared}   (config keys val_dataloader.dataset.ann_file, val_evaluator.ann_file):\n'
        f'    {shared} {problem}')


def test_relative_paths_without_data_root_empty_prefixes_and_remote_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = dict(train_dataloader=loader(type='CocoDataset', ann_file='a.json', data_prefix=dict(img='')),
               val_dataloader=loader(type='CocoDataset', ann_file='s3://bucket/b.json', data_root=str(tmp_path)))
    assert missing_config_files(cfg) == [('train_dataloader.dataset.ann_file', 'a.json', COCO_HOWTO)]


def test_the_official_nus_wide_split_needs_neither_image_list_nor_label_file(tmp_path):
    dataset = dict(type='NUSWIDEMultiLabel', data_root=str(tmp_path), split_mode='official',
                   image_list='list.txt', label_file='labels.txt', concepts_file='concepts.txt')
    assert missing_config_files(dict(train_dataloader=loader(**dataset))) == [
        ('train_dataloader.dataset.concepts_file', osp.join(str(tmp_path), 'concepts.txt'), DATA_HOWTO)]


def test_images_of_a_dataset_without_data_root_and_prefix_are_relative_to_the_working_folder(tmp_path,
                                                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, coco())
    cfg = dict(train_dataloader=loader(type='CocoDataset', ann_file=path))
    assert malformed_config_files(cfg, loaders=('train', )) == []


def test_malformed_files_of_other_loaders_are_not_read(tmp_path):
    path = write(tmp_path, coco(images=[dict(id=1, file_name='')]))
    cfg = dict(train_dataloader=loader(type='CocoDataset', ann_file=path, data_root=str(tmp_path)))
    check_config_files(cfg, loaders=('test', ))


def test_the_whole_message_of_missing_and_malformed_files(tmp_path):
    bad = write(tmp_path, coco(images=[dict(id=None, file_name='a.png'), dict(id=None, file_name='b.png')]))
    root = str(tmp_path / 'gone')
    cfg = dict(train_dataloader=loader(type='CocoDataset', data_root=root, ann_file='t.json', img_prefix='im/'),
               val_dataloader=loader(type='CocoDataset', ann_file=bad, data_root=str(tmp_path)),
               model=dict(backbone=dict(type='X', init_cfg=dict(type='Pretrained', checkpoint=root + '/w.pth'))))
    with pytest.raises(MalformedFilesError) as info:
        check_config_files(cfg)
    weights = ('make it once on a machine with internet: python -c "import timm, torch; torch.save('
               f"timm.create_model('<timm model name>', pretrained=True).state_dict(), '{root}/w.pth')\" (nothing "
               "is downloaded at training time); or train without it (from scratch; the paper's results start from "
               'ImageNet weights): --cfg-options model.backbone.init_cfg=None')
    assert str(info.value) == (
        '3 file(s) the config needs are missing:\n'
        f'  {root}/t.json   (config key train_dataloader.dataset.ann_file)\n'
        f'  {root}/im/   (config key train_dataloader.dataset.img_prefix)\n'
        f'    how to get it: {COCO_HOWTO}\n'
        f'  {root}/w.pth   (config key model.backbone.init_cfg.checkpoint)\n'
        f'    how to get it: {weights}\n'
        '1 file(s) the config needs are malformed:\n'
        f'  {bad}   (config key val_dataloader.dataset.ann_file):\n'
        f'    {bad} images[0] has id None; expected an integer image id\n'
        f'    {bad} images[1] has id None; expected an integer image id')


def test_an_empty_image_prefix_is_not_a_path_to_check(tmp_path):
    root = str(tmp_path / 'gone')
    cfg = dict(train_dataloader=loader(type='CocoDataset', data_root=root, ann_file='a.json',
                                       data_prefix=dict(img='', seg=None)))
    assert missing_config_files(cfg) == [('train_dataloader.dataset.ann_file', osp.join(root, 'a.json'), COCO_HOWTO)]

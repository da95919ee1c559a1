"""tools/train.py checks every data and weight file of a config before building the Runner and reports all
missing ones at once, with how to obtain each."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

import mmdet_asl  # noqa: F401
from mmdet_asl.utils import MissingFilesError, check_config_files, missing_config_files

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
FLAGSHIP = osp.join(ROOT, 'configs', 'fcos_tresnetm_asl.py')
sys.path.insert(0, osp.join(ROOT, 'tools'))
import train as train_tool  # noqa: E402


def flagship(**options):
    cfg = Config.fromfile(FLAGSHIP)
    cfg.merge_from_dict(options)
    return cfg


def test_flagship_lists_all_missing_files_with_how_to_get_them(tmp_path):
    root = str(tmp_path / 'coco') + '/'
    cfg = flagship(**{'train_dataloader.dataset.data_root': root, 'val_dataloader.dataset.data_root': root,
                      'val_evaluator.ann_file': root + 'annotations/instances_val2017.json',
                      'model.backbone.init_cfg.checkpoint': str(tmp_path / 'tresnet_m.pth')})
    missing = missing_config_files(cfg)
    assert {key for key, _, _ in missing} == {
        'train_dataloader.dataset.ann_file', 'train_dataloader.dataset.data_prefix.img',
        'val_dataloader.dataset.ann_file', 'val_dataloader.dataset.data_prefix.img',
        'model.backbone.init_cfg.checkpoint'}
    with pytest.raises(MissingFilesError) as info:
        check_config_files(cfg)
    message = str(info.value)
    assert message.startswith('5 file(s)')
    assert root + 'annotations/instances_train2017.json' in message and 'cocodataset.org' in message
    assert "timm.create_model('tresnet_m.miil_in21k_ft_in1k', pretrained=True)" in message
    assert str(tmp_path / 'tresnet_m.pth') in message and 'model.backbone.init_cfg=None' in message
    # once the files exist nothing is reported; without the checkpoint the init_cfg=None route is clean too
    for sub in ('annotations', 'train2017', 'val2017'):
        os.makedirs(root + sub, exist_ok=True)
    for name in ('instances_train2017.json', 'instances_val2017.json'):
        with open(root + 'annotations/' + name, 'w') as f:
            json.dump(dict(info={}, images=[], annotations=[], categories=[dict(id=1, name='person')]), f)
    assert [key for key, _, _ in missing_config_files(cfg)] == ['model.backbone.init_cfg.checkpoint']
    cfg.model.backbone.init_cfg = None
    check_config_files(cfg)


def test_train_tool_checks_before_building_the_runner(tmp_path, monkeypatch):
    def no_runner(*args, **kwargs):
        raise AssertionError('the Runner was built although files are missing')

    monkeypatch.setattr(train_tool.Runner, 'from_cfg', no_runner)
    with pytest.raises(MissingFilesError, match='5 file'):
        train_tool.main([FLAGSHIP, '--work-dir', str(tmp_path)])
    (tmp_path / 'a.json').write_text('{}')
    with pytest.raises(MissingFilesError, match=r'(?s)1 file.*no_such\.pth.*config key load_from'):
        train_tool.main([FLAGSHIP, '--work-dir', str(tmp_path), '--cfg-options', 'model.backbone.init_cfg=None',
                         f'load_from={tmp_path}/no_such.pth', f'train_dataloader.dataset.data_root={tmp_path}/',
                         f'val_dataloader.dataset.data_root={tmp_path}/', 'val_cfg=None', 'val_dataloader=None',
                         'val_evaluator=None', 'train_dataloader.dataset.ann_file=a.json',
                         'train_dataloader.dataset.data_prefix.img=.'])


def test_train_command_line_exits_with_the_list():
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'train.py'), FLAGSHIP], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, MMDET_ASL_COMPILE='0'))
    if osp.exists(osp.join(ROOT, 'data', 'coco')):
        pytest.skip('data/coco exists in this checkout')
    assert proc.returncode != 0
    assert 'file(s) the config needs are missing' in proc.stderr and 'Traceback' not in proc.stderr
    assert 'instances_train2017.json' in proc.stderr and 'tresnet_m_miil_in21k_ft_in1k.pth' in proc.stderr


def test_dataset_keys_of_the_multilabel_datasets(tmp_path):
    nus = dict(type='NUSWIDEMultiLabel', data_root=str(tmp_path), image_list='ImageList/Imagelist.txt',
               concepts_file='Concepts81.txt', img_prefix='Flickr')
    cfg = dict(model=dict(), train_dataloader=dict(dataset=dict(type='RepeatDataset', times=2, dataset=nus)))
    assert {k for k, _, _ in missing_config_files(cfg, ('train', ))} == {
        'train_dataloader.dataset.dataset.image_list', 'train_dataloader.dataset.dataset.concepts_file',
        'train_dataloader.dataset.dataset.img_prefix'}
    nus['split_mode'] = 'official'  # the official split lists are used instead of image_list
    assert {k for k, _, _ in missing_config_files(cfg, ('train', ))} == {
        'train_dataloader.dataset.dataset.concepts_file', 'train_dataloader.dataset.dataset.img_prefix'}


def _fresh(config, **options):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
    cfg.merge_from_dict(options)
    return cfg


def test_converter_outputs_point_to_their_converter(tmp_path):
    """Data that a tools/dataset_converters/ script makes names that script, not the MS-COCO download."""
    root = str(tmp_path / 'fashion_canvas') + '/'
    cfg = _fresh('multilabel/resnet18-w16_asl_1xb64_fashion-canvas.py',
                 **{'train_dataloader.dataset.data_root': root, 'val_dataloader.dataset.data_root': root})
    with pytest.raises(MissingFilesError) as info:
        check_config_files(cfg)
    message = str(info.value)
    assert root + 'annotations/instances_train.json' in message
    assert 'how to get it: python tools/dataset_converters/make_fashion_canvases.py' in message
    assert 'cocodataset.org' not in message
    root = str(tmp_path / 'deepforest') + '/'
    cfg = _fresh('demo/fcos_effnet-lite0_asl_deepforest.py', **{
        'train_dataloader.dataset.data_root': root, 'val_dataloader.dataset.data_root': root,
        'val_evaluator.ann_file': str(tmp_path / 'copy' / 'deepforest' / 'annotations' / 'val.json'),
        'model.backbone.init_cfg.checkpoint': str(tmp_path / 'lite0.pth')})
    howto = {key: h for key, _, h in missing_config_files(cfg)}  # (the evaluator's file is another copy)
    assert howto['val_evaluator.ann_file'].startswith('python tools/dataset_converters/prepare_deepforest.py')
    assert howto['train_dataloader.dataset.ann_file'] == howto['val_evaluator.ann_file']


def test_efficientnet_weights_point_to_the_converter(tmp_path):
    path = str(tmp_path / 'lite0.pth')
    cfg = _fresh('demo/fcos_effnet-lite0_asl_deepforest.py', **{'model.backbone.init_cfg.checkpoint': path})
    howto = {key: h for key, _, h in missing_config_files(cfg)}['model.backbone.init_cfg.checkpoint']
    assert howto.startswith('python tools/model_converters/efficientnet_lite_to_mmdet.py --arch '
                            f'tf_efficientnet_lite0 --out {path} ')
    assert 'timm.create_model' not in howto
    # without an explicit arch the backbone's default variant (Lite0) is converted
    cfg.model.backbone.pop('arch')
    howto = {key: h for key, _, h in missing_config_files(cfg)}['model.backbone.init_cfg.checkpoint']
    assert '--arch tf_efficientnet_lite0' in howto
    cfg = _fresh('demo/fcos_effnet-lite0_asl_deepforest.py', **{'model.backbone.init_cfg': None,
                                                                 'load_from': str(tmp_path / 'epoch_60.pth')})
    howto = {key: h for key, _, h in missing_config_files(cfg)}['load_from']
    assert 'CHECKPOINT argument of tools/test.py' in howto

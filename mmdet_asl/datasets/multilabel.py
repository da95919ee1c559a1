"""Multi-label datasets for MMPretrain configs (registered in MMPretrain's ``DATASETS``).

* :class:`CocoMultiLabel` - MS-COCO 2014 (80 classes) or any COCO-format ``instances_*.json`` (the
  Fashion-MNIST canvases of ``tools/dataset_converters/make_fashion_canvases.py`` too): a class is positive
  when the image has at least one annotation of it (crowd annotations included, as the official ASL ``CocoDetection``).
* :class:`VOC2007MultiLabel` - MMPretrain's ``VOC`` with clear errors for missing or empty files.
* :class:`NUSWIDEMultiLabel` (``nus_wide.py``) - NUS-WIDE, 81 concepts, seeded or official split.
* :class:`OpenImagesPartialLabel` (``open_images.py``) - Open Images image-level labels with partial
  annotation.

Every dataset checks its files first: a missing file raises ``FileNotFoundError`` naming it and showing the
expected layout; a file with the wrong content raises :class:`~.checks.DatasetFileError` (a ``ValueError``)
naming the file, the line or entry, and what was expected; an image that cannot be read raises naming it.
"""
import os.path as osp
from typing import List, Optional

from mmengine.logging import MMLogger

from mmpretrain.datasets import VOC, MultiLabelDataset
from mmpretrain.registry import DATASETS

from ..utils.preflight import coco_file_problems
from .checks import DatasetFileError, NamedSampleErrors, check_files, read_json, read_lines, require_samples
from .nus_wide import NUS_WIDE_LAYOUT, NUSWIDEMultiLabel  # noqa: F401  (re-exported)
from .open_images import OPEN_IMAGES_LAYOUT, OpenImagesPartialLabel  # noqa: F401  (re-exported)

COCO_LAYOUT = """\
data/coco/
    annotations/instances_train2014.json
    annotations/instances_val2014.json
    train2014/COCO_train2014_000000000009.jpg ...
    val2014/COCO_val2014_000000000042.jpg ...
(MS-COCO 2014 train/val images and the 2014 "Train/Val annotations" archive.)
For the Fashion-MNIST canvases (data/fashion_canvas/{annotations/instances_{train,test}.json, train/, test/}) run
`apt-get install -y dataset-fashion-mnist && python tools/dataset_converters/make_fashion_canvases.py`."""

VOC_LAYOUT = """\
data/VOC2007/            (VOCtrainval_06-Nov-2007 + VOCtest_06-Nov-2007, merged)
    JPEGImages/000001.jpg ...
    Annotations/000001.xml ...
    ImageSets/Main/trainval.txt
    ImageSets/Main/test.txt"""

COCO_EXPECTED = 'a COCO instances JSON object with "images", "annotations" and "categories" lists'


def _coco_tables(name: str, path: str, data: dict, image_dir: str, root: Optional[str]):
    """Validate a COCO instances dict (see :func:`~mmdet_asl.utils.preflight.coco_file_problems`: unique
    integer category ids, unique image ids, a file_name for every image inside ``root``, every annotation's
    image and category known) and index it."""
    problems = coco_file_problems(data, image_dir, root)
    if problems:
        raise DatasetFileError(f'{name}: {path} ' + f'\n{name}: {path} '.join(problems))
    cats = {cat['id']: cat.get('name') for cat in data['categories']}
    images = {img['id']: img for img in data['images']}
    per_image = {}
    for ann in data['annotations']:
        per_image.setdefault(ann['image_id'], set()).add(ann['category_id'])
    return cats, images, per_image


@DATASETS.register_module()
class CocoMultiLabel(NamedSampleErrors, MultiLabelDataset):
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
        allow_outside_data_root (bool): read images whose ``file_name`` leads outside ``data_root`` (outside
            the image folder when ``data_root`` is empty). Default False.
        **kwargs: other :class:`mmpretrain.datasets.BaseDataset` arguments (``pipeline``, ``test_mode`` ...).
    """

    def __init__(self, ann_file: str, data_root: str = '', data_prefix='', drop_empty: bool = True,
                 metainfo: Optional[dict] = None, allow_outside_data_root: bool = False, **kwargs):
        self.drop_empty = drop_empty
        self.allow_outside_data_root = allow_outside_data_root
        if isinstance(data_prefix, str):
            data_prefix = dict(img_path=data_prefix)
        super().__init__(ann_file=ann_file, data_root=data_root, data_prefix=data_prefix, metainfo=metainfo,
                         **kwargs)

    def load_data_list(self) -> List[dict]:
        name = type(self).__name__
        img_dir = self.data_prefix.get('img_path', '')
        check_files(name, [self.ann_file] + ([img_dir] if img_dir else []), COCO_LAYOUT)
        root = None if self.allow_outside_data_root else (self.data_root or img_dir or '.')
        cats, images, per_image = _coco_tables(name, self.ann_file, read_json(name, self.ann_file, COCO_EXPECTED),
                                               img_dir, root)
        cat_ids = sorted(cats)
        if self._metainfo.get('classes') is None:
            self._metainfo['classes'] = tuple(cats[c] for c in cat_ids)
        elif len(self._metainfo['classes']) != len(cat_ids):
            raise ValueError(f'{name}: {len(self._metainfo["classes"])} classes given, but '
                             f'{self.ann_file} has {len(cat_ids)} categories')
        cat_to_label = {cid: i for i, cid in enumerate(cat_ids)}
        data_list, dropped = [], 0
        for img_id in sorted(images):
            cats_here = per_image.get(img_id, set())
            if not cats_here and self.drop_empty:
                dropped += 1
                continue
            data_list.append(dict(img_path=osp.join(img_dir, images[img_id]['file_name']),
                                  gt_label=sorted(cat_to_label[c] for c in cats_here), img_id=img_id))
        if dropped:
            MMLogger.get_current_instance().info(
                f'{name}: dropped {dropped} images without annotations from {self.ann_file} '
                f'(drop_empty=True), kept {len(data_list)}')
        return require_samples(name, data_list, f'{self.ann_file} has {len(images)} images, {dropped} of them '
                               'without annotations (dropped with drop_empty=True)')


@DATASETS.register_module()
class VOC2007MultiLabel(NamedSampleErrors, VOC):
    """MMPretrain's ``VOC`` (difficult labels in ``gt_label_difficult``), failing clearly on missing files."""

    def load_data_list(self):
        name = type(self).__name__
        check_files(name, [self.image_set_path, self.data_prefix['img_path']] +
                    ([self.data_prefix['ann_path']] if self.data_prefix.get('ann_path') else []), VOC_LAYOUT)
        read_lines(name, self.image_set_path, 'one image id (e.g. 000005)')  # empty or non-UTF-8 list
        return super().load_data_list()

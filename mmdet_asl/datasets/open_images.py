"""Open Images image-level labels with partial annotation as a multi-label dataset."""
import csv
import os.path as osp

import numpy as np
from mmengine.logging import MMLogger

from mmpretrain.datasets import MultiLabelDataset
from mmpretrain.registry import DATASETS

from .checks import DatasetFileError, NamedSampleErrors, check_files, check_unique, read_lines, require_samples

OPEN_IMAGES_LAYOUT = """\
data/openimages/
    annotations/classes.txt          the label MIDs used as classes, one per line (e.g. /m/01g317);
                                     a CSV 'LabelName,DisplayName' file (oidv6-class-descriptions.csv) works too
    annotations/<split>-annotations-human-imagelabels.csv
                                     columns ImageID,Source,LabelName,Confidence (1 = verified present,
                                     0 = verified absent), e.g. oidv6-train-annotations-human-imagelabels.csv
    <split>/<ImageID>.jpg            the images"""


@DATASETS.register_module()
class OpenImagesPartialLabel(NamedSampleErrors, MultiLabelDataset):
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
        drop_empty (bool): drop images with no verified label among the classes (their rows are all of other
            classes). Default True. With False they are kept with every class untagged.

    A class marked both verified present and verified absent for one image (two rows, e.g. from two
    verification sources) counts as present (target 1, weight 1); the pairs are logged and kept in
    ``label_conflicts`` as (ImageID, LabelName, line, line). A Confidence that is not a number in [0, 1]
    (``NaN`` included, which would otherwise read as verified absent) raises naming the line.
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

    def _read_classes(self, name: str):
        lines = read_lines(name, self.classes_file, "one label MID (or a 'LabelName,DisplayName' CSV row)")
        rows = [(i, next(csv.reader([line]))) for i, line in lines]
        rows = [(i, row) for i, row in rows if row and row[0].strip() and row[0] != 'LabelName']
        if not rows:
            raise DatasetFileError(f'{name}: {self.classes_file} has a header but no class; expected one label '
                                   'MID per line')
        check_unique(name, self.classes_file, [(i, row[0].strip()) for i, row in rows], 'label MID')
        mids = [row[0].strip() for _, row in rows]
        names = [row[1].strip() if len(row) > 1 else row[0].strip() for _, row in rows]
        return mids, names

    def _read_annotations(self, name: str, mid_to_label: dict) -> dict:
        with open(self.ann_file, encoding='utf-8-sig', newline='') as f:
            reader = csv.DictReader(f)
            try:
                return self._parse_rows(name, reader, mid_to_label)
            except UnicodeDecodeError as exc:
                raise DatasetFileError(f'{name}: {self.ann_file} near line {reader.line_num + 1} is not UTF-8 '
                                       f'({exc.reason}); expected a UTF-8 CSV file') from None

    def _parse_rows(self, name: str, reader: csv.DictReader, mid_to_label: dict) -> dict:
        missing = {'ImageID', 'LabelName', 'Confidence'} - set(reader.fieldnames or ())
        if missing:
            raise DatasetFileError(f'{name}: {self.ann_file} lacks the column(s) {sorted(missing)}; expected '
                                   'ImageID,Source,LabelName,Confidence')
        per_image, num_rows, seen_mids = {}, 0, set()
        self.label_conflicts, self.unlabeled_images = [], set()
        for row in reader:
            num_rows += 1
            seen_mids.add(row['LabelName'])
            label = mid_to_label.get(row['LabelName'])
            if label is None:
                self.unlabeled_images.add(row['ImageID'])  # until a row of a known class comes
                continue
            try:
                confidence = float(row['Confidence'])
            except (TypeError, ValueError):
                confidence = None
            # NaN compares false with everything: it would read as "verified absent" (weight 1, target 0).
            if confidence is None or not 0.0 <= confidence <= 1.0:
                raise DatasetFileError(f'{name}: {self.ann_file} line {reader.line_num} (ImageID '
                                       f'{row["ImageID"]}, LabelName {row["LabelName"]}) has Confidence '
                                       f'{row["Confidence"]!r}; expected a number in [0, 1] (1 = verified '
                                       'present, 0 = verified absent)')
            pos, neg = per_image.setdefault(row['ImageID'], ({}, {}))
            here, other = (pos, neg) if confidence > 0.5 else (neg, pos)
            here.setdefault(label, reader.line_num)
            if label in other:  # one class verified present and verified absent: present wins (below)
                lines = sorted((here[label], other[label]))
                self.label_conflicts.append((row['ImageID'], row['LabelName'], lines[0], lines[1]))
        if not num_rows:
            raise DatasetFileError(f'{name}: {self.ann_file} has no annotation row; expected a header and rows '
                                   'ImageID,Source,LabelName,Confidence')
        if not per_image:
            raise DatasetFileError(
                f'{name}: none of the {len(seen_mids)} label MIDs of {self.ann_file} (e.g. {sorted(seen_mids)[:3]}) '
                f'is among the {len(mid_to_label)} classes of {self.classes_file} (e.g. {list(mid_to_label)[:3]}); '
                'expected the classes file of the same Open Images version')
        self.unlabeled_images.difference_update(per_image)
        if self.label_conflicts:
            image_id, mid, first, second = self.label_conflicts[0]
            MMLogger.get_current_instance().warning(
                f'{name}: {len(self.label_conflicts)} (image, class) pair(s) of {self.ann_file} are marked both '
                f'verified present and verified absent, e.g. ImageID {image_id} LabelName {mid} on lines {first} '
                f'and {second}; present wins (target 1, weight 1)')
        return per_image

    def load_data_list(self):
        name = type(self).__name__
        check_files(name, [self.classes_file, self.ann_file, self.data_prefix['img_path']], OPEN_IMAGES_LAYOUT)
        mids, names = self._read_classes(name)
        if self._metainfo.get('classes') is None:
            self._metainfo['classes'] = tuple(names)
        per_image = self._read_annotations(name, {m: i for i, m in enumerate(mids)})
        img_dir = self.data_prefix['img_path']
        data_list = []
        if not self.drop_empty:  # images whose rows are all of other classes: every class untagged
            per_image.update({image_id: ({}, {}) for image_id in self.unlabeled_images})
        for image_id in sorted(per_image):
            pos, neg = per_image[image_id]
            data_list.append(dict(img_path=osp.join(img_dir, f'{image_id}.jpg'), gt_label=sorted(pos),
                                  neg_label=sorted(set(neg) - set(pos))))
        return require_samples(name, data_list, f'no image of {self.ann_file} has a label among the classes')

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

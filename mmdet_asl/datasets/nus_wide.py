"""NUS-WIDE (81 concepts) as a multi-label dataset: a seeded random split of the whole image list, or the
dataset's official train/test split files."""
import os.path as osp
from typing import List, Optional

import numpy as np

from mmpretrain.datasets import MultiLabelDataset
from mmpretrain.registry import DATASETS

from .checks import DatasetFileError, NamedSampleErrors, check_files, check_unique, read_lines, require_samples

NUS_WIDE_LAYOUT = """\
data/nus-wide/
    ImageList/Imagelist.txt           one relative image path per line (N lines; '\\' or '/' separators)
    Concepts81.txt                    the 81 concept names, one per line
    Groundtruth/AllLabels/Labels_<concept>.txt   for each of the 81 concepts: N lines of 0/1
      (or, instead of the 81 files, one matrix file given as label_file: N rows x 81 columns of 0/1)
    Flickr/<the paths of Imagelist.txt>           the images
  with split_mode='official' instead of Imagelist.txt and AllLabels (the NUS-WIDE split files):
    ImageList/TrainImagelist.txt, ImageList/TestImagelist.txt
    Groundtruth/TrainTestLabels/Labels_<concept>_Train.txt, Labels_<concept>_Test.txt"""


def _binary_column(name: str, path: str, num_rows: int) -> np.ndarray:
    """One concept's labels: ``num_rows`` lines of 0 or 1, errors naming the file and line."""
    lines = read_lines(name, path, 'one 0/1 label')
    if len(lines) != num_rows:
        raise DatasetFileError(f'{name}: {path} has {len(lines)} labels; expected {num_rows}, one per image '
                               'of the image list')
    bad = next(((i, v) for i, v in lines if v not in ('0', '1')), None)
    if bad:
        raise DatasetFileError(f'{name}: {path} line {bad[0]} is {bad[1]!r}; expected 0 or 1')
    return np.fromiter((v == '1' for _, v in lines), dtype=np.int64, count=num_rows)


def _label_matrix(name: str, path: str) -> np.ndarray:
    try:
        # Text is read as numbers first: an integer parse would truncate 0.5 to 0 (a warning, not an error).
        labels = np.load(path) if path.endswith('.npy') else np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (ValueError, OSError) as exc:
        raise DatasetFileError(f'{name}: cannot read the label matrix {path}: {exc}; expected rows of 0/1, '
                               'one row per image and one column per concept') from None
    if labels.ndim != 2:
        raise DatasetFileError(f'{name}: {path} must be a 2-D matrix of 0/1, got shape {labels.shape}')
    bad = np.argwhere(~np.isin(labels, (0, 1)))
    if len(bad):
        row, col = (int(i) for i in bad[0])
        raise DatasetFileError(f'{name}: {path} must be a 2-D matrix of 0/1, got {float(labels[row, col]):g} at row '
                               f'{row}, column {col} ({len(bad)} such values)')
    return labels.astype(np.int64)


@DATASETS.register_module()
class NUSWIDEMultiLabel(NamedSampleErrors, MultiLabelDataset):
    """NUS-WIDE (81 concepts) from the image list + label matrix layout.

    Splits (``split_mode``):

    * ``'random'`` (default): a permutation of the (kept) images of ``image_list`` drawn with
      ``np.random.default_rng(split_seed)``; the first ``round(train_ratio * N)`` are ``split='train'``, the
      rest ``split='test'``.
    * ``'official'``: NUS-WIDE's own split, ``ImageList/{Train,Test}Imagelist.txt`` with the labels of
      ``Groundtruth/TrainTestLabels/Labels_<concept>_{Train,Test}.txt`` (``train_ratio``, ``split_seed``,
      ``image_list``, ``label_dir`` and ``label_file`` are not used).

    Images with no positive concept are dropped first when ``drop_unlabeled=True`` (default), as common
    practice does.

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
        split_mode (str): 'random' or 'official'. Default 'random'.
        official_list (str): image list of the official split, ``{split}`` = 'Train'/'Test'.
            Default 'ImageList/{split}Imagelist.txt'.
        official_label_dir (str): labels of the official split. Default 'Groundtruth/TrainTestLabels'.
    """

    def __init__(self, data_root: str, split: str = 'train', image_list: str = 'ImageList/Imagelist.txt',
                 concepts_file: str = 'Concepts81.txt', label_dir: str = 'Groundtruth/AllLabels',
                 label_file: Optional[str] = None, img_prefix: str = 'Flickr', train_ratio: float = 0.7,
                 split_seed: int = 0, drop_unlabeled: bool = True, split_mode: str = 'random',
                 official_list: str = 'ImageList/{split}Imagelist.txt',
                 official_label_dir: str = 'Groundtruth/TrainTestLabels', **kwargs):
        if split not in ('train', 'test'):
            raise ValueError(f"NUSWIDEMultiLabel: split must be 'train' or 'test', got {split!r}")
        if split_mode not in ('random', 'official'):
            raise ValueError(f"NUSWIDEMultiLabel: split_mode must be 'random' or 'official', got {split_mode!r}")
        if not 0 < train_ratio < 1:
            raise ValueError(f'NUSWIDEMultiLabel: train_ratio must be in (0, 1), got {train_ratio}')
        self.split = split
        self.split_mode = split_mode
        tag = split.capitalize()
        if split_mode == 'official':
            image_list = official_list.format(split=tag)
            label_dir, label_file = official_label_dir, None
        self.label_pattern = 'Labels_{}.txt' if split_mode == 'random' else 'Labels_{}_' + tag + '.txt'
        self.image_list = osp.join(data_root, image_list)
        self.concepts_file = osp.join(data_root, concepts_file)
        self.label_dir = osp.join(data_root, label_dir)
        self.label_file = osp.join(data_root, label_file) if label_file else None
        self.train_ratio = train_ratio
        self.split_seed = split_seed
        self.drop_unlabeled = drop_unlabeled
        super().__init__(ann_file='', data_root=data_root, data_prefix=dict(img_path=img_prefix), **kwargs)

    def _labels(self, name: str, concepts: List[str], num_images: int) -> np.ndarray:
        if self.label_file:
            check_files(name, [self.label_file], NUS_WIDE_LAYOUT)
            labels = _label_matrix(name, self.label_file)
        else:
            files = [osp.join(self.label_dir, self.label_pattern.format(c)) for c in concepts]
            check_files(name, files, NUS_WIDE_LAYOUT)
            labels = np.stack([_binary_column(name, f, num_images) for f in files], axis=1)
        if labels.shape != (num_images, len(concepts)):
            raise DatasetFileError(f'{name}: the label matrix {self.label_file} is {labels.shape}, expected '
                                   f'({num_images} images in {self.image_list}, {len(concepts)} concepts in '
                                   f'{self.concepts_file})')
        return labels

    def load_data_list(self):
        name = type(self).__name__
        check_files(name, [self.image_list, self.concepts_file], NUS_WIDE_LAYOUT)
        concept_lines = read_lines(name, self.concepts_file, 'one concept name')
        check_unique(name, self.concepts_file, concept_lines, 'concept')
        concepts = [c for _, c in concept_lines]
        paths = [p.replace('\\', '/') for _, p in read_lines(name, self.image_list, 'one relative image path')]
        labels = self._labels(name, concepts, len(paths))
        if self._metainfo.get('classes') is None:
            self._metainfo['classes'] = tuple(concepts)
        keep = np.flatnonzero(labels.sum(1) > 0) if self.drop_unlabeled else np.arange(len(paths))
        if self.split_mode == 'official':
            chosen = keep
        else:
            order = np.random.default_rng(self.split_seed).permutation(len(keep))
            n_train = int(round(self.train_ratio * len(keep)))
            chosen = np.sort(keep[order[:n_train]] if self.split == 'train' else keep[order[n_train:]])
        img_dir = self.data_prefix['img_path']
        data_list = [dict(img_path=osp.join(img_dir, paths[i]), gt_label=np.flatnonzero(labels[i]).tolist())
                     for i in chosen]
        return require_samples(name, data_list, f'{len(paths)} images in {self.image_list}, {len(keep)} with a '
                               f'positive concept, none left for split={self.split!r}')

"""Missing labels for the converters' training splits: a seeded removal of positives, recorded.

A study of how a loss copes with missing positives needs labelled data with a known fraction of them removed,
the images unchanged. The removal has its own generator, seeded from (``seed``, "missing"), so that it never
changes what the rest of a converter draws, and one uniform draw per candidate, so that the removals at a
smaller rate are a subset of those at a larger one.
"""
import json
import os.path as osp

import numpy as np

# numpy SeedSequence([seed, MISSING_STREAM]) is independent of a converter's own default_rng(seed)
MISSING_STREAM = int.from_bytes(b'missing', 'big')
MISSING_UNITS = ('label', 'box')
REMOVED_FILE = 'removed_train_labels.json'  # the record, beside the converter's training annotations
GENERATOR = 'numpy.random.default_rng(numpy.random.SeedSequence([seed, int.from_bytes(b"missing", "big")]))'


def missing_generator(seed):
    """The generator of the missing-label draws."""
    return np.random.default_rng(np.random.SeedSequence([seed, MISSING_STREAM]))


def remove_labels(annotations, rate, unit, seed):
    """Remove training positives as missing labels; returns (kept annotations, list of removals).

    ``unit='label'``: one uniform draw per (image, category) pair present, in increasing (image id, category
    id) order; a pair whose draw is below ``rate`` loses all its annotations. ``unit='box'``: one draw per
    annotation, in the given order. Annotations with ``iscrowd=1`` are ignore regions, not positives: they
    draw nothing and stay. The number of draws does not depend on ``rate``. Each removal is a dict with
    ``image_id``, ``category_id`` and the removed ``annotation_ids``.
    """
    if unit not in MISSING_UNITS:
        raise ValueError(f'missing-label unit {unit!r} is not one of {MISSING_UNITS}')
    rng = missing_generator(seed)
    positives = [a for a in annotations if not a.get('iscrowd', 0)]
    removed_ids, removals = set(), []
    if unit == 'box':
        for ann, u in zip(positives, rng.random(len(positives))):
            if u < rate:
                removed_ids.add(ann['id'])
                removals.append(dict(image_id=ann['image_id'], category_id=ann['category_id'],
                                     annotation_ids=[ann['id']]))
    else:
        pairs = {}
        for ann in positives:
            pairs.setdefault((ann['image_id'], ann['category_id']), []).append(ann['id'])
        keys = sorted(pairs)
        for key, u in zip(keys, rng.random(len(keys))):
            if u < rate:
                removed_ids.update(pairs[key])
                removals.append(dict(image_id=key[0], category_id=key[1], annotation_ids=sorted(pairs[key])))
    return [a for a in annotations if a['id'] not in removed_ids], removals


def write_record(path, rate, unit, seed, before, after, removals):
    """The record of a removal: rate, unit, seed, generator, annotation counts and every removal."""
    record = dict(missing_rate=rate, missing_unit=unit, seed=seed, generator=GENERATOR,
                  annotations_before=before, annotations_after=after, removed=removals)
    with open(path, 'w') as f:
        json.dump(record, f)


def record_matches(path, rate, unit, seed):
    """Whether ``path`` is a readable record of this removal (else the caller rebuilds, so that the record and
    the annotation file agree)."""
    if not osp.isfile(path):
        return False
    try:
        with open(path, 'rb') as f:
            record = json.loads(f.read())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get('missing_rate') == rate and \
        record.get('missing_unit') == unit and record.get('seed') == seed

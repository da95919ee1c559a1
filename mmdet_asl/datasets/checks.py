"""File checks shared by the multi-label datasets: every error names the file, the line or entry, and what
was expected, instead of failing later inside MMEngine ("need at least one array to concatenate") or
OpenCV (a bare ``cv2.error``)."""
import json
import os.path as osp
from typing import Dict, List, Sequence, Tuple


class DatasetFileError(ValueError):
    """An annotation, list or image file exists but its content is not what the dataset expects."""


def check_files(dataset: str, files: Sequence[str], layout: str) -> None:
    """Raise ``FileNotFoundError`` naming every missing path and showing the expected layout."""
    missing = [path for path in files if not osp.exists(path)]
    if missing:
        raise FileNotFoundError(
            f'{dataset}: missing {", ".join(repr(p) for p in missing)}. Expected layout (paths relative to the '
            f"config's data_root):\n{layout}")


def read_lines(dataset: str, path: str, what: str) -> List[Tuple[int, str]]:
    """Non-blank stripped lines of a UTF-8 text file with their 1-based line numbers; error if none.

    Args:
        dataset (str): dataset name for the messages.
        path (str): the file.
        what (str): what one line should be, for the messages (e.g. 'one concept name').
    """
    with open(path, 'rb') as f:
        raw = f.read()
    try:
        text = raw.decode('utf-8-sig')
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b'\n') + 1
        raise DatasetFileError(
            f'{dataset}: {path} line {line} is not UTF-8 (byte {raw[exc.start]:#04x} at offset {exc.start}); '
            f'expected a UTF-8 text file. Convert it, e.g. iconv -f latin1 -t utf-8 {osp.basename(path)}') from None
    lines = [(i, line.strip()) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise DatasetFileError(f'{dataset}: {path} is empty; expected {what} per line')
    return lines


def check_unique(dataset: str, path: str, items: Sequence[Tuple[int, str]], what: str) -> None:
    """Raise if a value occurs twice among (line, value) pairs, naming both lines."""
    seen: Dict[str, int] = {}
    for line, value in items:
        if value in seen:
            raise DatasetFileError(f'{dataset}: {path} lines {seen[value]} and {line} both give the {what} '
                                   f'{value!r}; expected each {what} once')
        seen[value] = line


def read_json(dataset: str, path: str, what: str) -> dict:
    """Parse a JSON object file; empty, corrupt or non-object files raise naming the file and position."""
    with open(path, 'rb') as f:
        raw = f.read()
    if not raw.strip():
        raise DatasetFileError(f'{dataset}: {path} is empty; expected {what}')
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetFileError(f'{dataset}: {path} is not valid JSON ({exc}); expected {what}') from None
    if not isinstance(data, dict):
        raise DatasetFileError(f'{dataset}: {path} holds a JSON {type(data).__name__}; expected {what}')
    return data


def require_samples(dataset: str, data_list: list, reason: str) -> list:
    """Return ``data_list``, or raise naming why it is empty (an empty dataset cannot be trained or tested)."""
    if not data_list:
        raise DatasetFileError(f'{dataset}: no samples: {reason}')
    return data_list


class NamedSampleErrors:
    """Mixin for MMEngine datasets: a sample whose image cannot be loaded raises naming the image file."""

    def prepare_data(self, idx):
        try:
            return super().prepare_data(idx)
        except Exception as exc:
            path = self.get_data_info(idx).get('img_path')
            name = type(self).__name__
            if path and osp.isfile(path) and osp.getsize(path) == 0:
                raise DatasetFileError(f'{name}: image {path} (sample {idx}) is empty (0 bytes); expected an '
                                       'image file: copy it again or remove it from the annotations') from exc
            raise DatasetFileError(f'{name}: cannot load sample {idx} (image {path}): '
                                   f'{type(exc).__name__}: {exc}') from exc

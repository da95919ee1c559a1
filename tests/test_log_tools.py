"""tools/analysis_tools/analyze_logs.py and browse_dataset.py on tiny inputs."""
import json
import os.path as osp
import sys

import cv2
import numpy as np
import pytest

from test_multilabel_datasets import fashion_source, mfc
from tiny_detection import make_coco, tiny_config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis_tools'))
import analyze_logs  # noqa: E402
import browse_dataset  # noqa: E402


def _log(path, gammas):
    lines = []
    for epoch, gamma in enumerate(gammas, 1):
        for it in (1, 2):
            step = 2 * (epoch - 1) + it
            lines.append(dict(lr=1e-3, loss=1.0 / step, asl_dp=0.1 * step, asl_gamma_neg=gamma, epoch=epoch,
                              iter=step, step=step, time=0.1))
        lines.append({'multi-label/mAP': 50.0 + epoch, 'step': epoch})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('\n'.join(json.dumps(d) for d in lines) + '\n')
    return path


def test_log_series_and_figure(tmp_path):
    log = _log(tmp_path / 'a' / '20261129_000000' / 'vis_data' / '20261129_000000.json', [4.0, 3.5])
    series = analyze_logs.load_log(str(log))
    assert series['loss'] == ([1, 2, 3, 4], [1.0, 0.5, 1 / 3, 0.25])
    assert series['multi-label/mAP'] == ([2, 4], [51.0, 52.0])  # drawn at the epoch's last iteration
    assert series['asl_gamma_neg'][1] == [4.0, 4.0, 3.5, 3.5]
    assert 'time' not in series and 'epoch' not in series
    _log(tmp_path / 'b' / 'x' / 'vis_data' / 'x.json', [4.0, 4.0])
    out = tmp_path / 'curves.png'
    assert analyze_logs.main(['plot_curve', str(tmp_path / 'a'), str(tmp_path / 'b'), '--legend', 'A', 'B',
                              '--out', str(out)]) == 0
    assert cv2.imread(str(out)).shape[1] > 4 * 400  # four panels
    with pytest.raises(SystemExit):
        analyze_logs.main(['plot_curve', str(log), '--keys', 'absent', '--out', str(out)])
    with pytest.raises(FileNotFoundError, match='vis_data'):
        analyze_logs.find_log(str(tmp_path / 'empty'))


def test_browse_classification_and_detection(tmp_path):
    canvases = tmp_path / 'canvas'
    assert mfc.main(['--src', fashion_source(tmp_path), '--out', str(canvases), '--num-train', '3',
                     '--num-test', '2']) == 0
    demo = osp.join(ROOT, 'configs', 'multilabel', 'resnet18-w16_asl_1xb64_fashion-canvas.py')
    out = tmp_path / 'cls'
    assert browse_dataset.main([demo, '--output-dir', str(out), '--num', '2', '--phase', 'val', '--cfg-options',
                                f'val_dataloader.dataset.data_root={canvases}']) == 0
    assert sorted(p.name for p in out.iterdir()) == ['val_0000.png', 'val_0001.png']
    raw = cv2.imread(str(canvases / 'test' / sorted((canvases / 'test').iterdir())[0].name))
    drawn = cv2.imread(str(out / 'val_0000.png'))
    assert drawn.shape == raw.shape and (np.abs(drawn.astype(int) - raw).sum(-1) > 0).any()  # names written

    make_coco(str(tmp_path / 'det'), num_images=2)
    cfg = tiny_config(str(tmp_path / 'det'), str(tmp_path / 'work'))
    cfg.train_dataloader.dataset.pipeline = [t for t in cfg.train_dataloader.dataset.pipeline if t.type != 'Resize']
    path = tmp_path / 'det.py'
    cfg.dump(str(path))
    out = tmp_path / 'det_out'
    assert browse_dataset.main([str(path), '--output-dir', str(out), '--num', '1']) == 0
    drawn = cv2.imread(str(out / 'train_0000.png'))
    ann = json.loads((tmp_path / 'det' / 'annotations' / 'train.json').read_text())['annotations'][0]
    x, y, w, h = ann['bbox']
    assert tuple(drawn[y + h // 2, x]) == browse_dataset.COLOR  # the box's left edge is drawn

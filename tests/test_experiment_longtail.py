"""tools/analysis_tools/experiment_longtail.py: the methods' configs, the curves and EFL's final gamma_j."""
import json

import pytest
import torch
from mmengine.config import Config

from test_detection_e2e import load_tool

tool = load_tool('analysis_tools/experiment_longtail')


def test_efl_method_is_focal_loss_at_s_zero_and_runs_without_the_probe(tmp_path):
    from mmdet_asl.models.losses import AsymmetricLoss, EqualizedFocalLoss
    args = type('A', (), dict(target=0.1, lam=0.05, clip_lam=0.005))
    methods = tool.methods(args)
    efl_cfg, probe = methods['efl']
    assert probe is False
    focal_cfg = methods['focal'][0]
    efl = EqualizedFocalLoss(**{k: v for k, v in efl_cfg.items() if k != 'type'}, validate=True)
    efl.scale_factor = 0.0  # s = 0: gamma_j = gamma_b = 2, weight 1
    focal = AsymmetricLoss(**{k: v for k, v in focal_cfg.items() if k != 'type'})
    torch.manual_seed(0)
    pred = torch.randn(8, 10, dtype=torch.float64)
    target = (torch.rand(8, 10) < 0.3).double()
    assert efl(pred, target, avg_factor=8) == pytest.approx(float(focal(pred, target, avg_factor=8)), rel=1e-9)
    path = str(tmp_path / 'efl.py')
    tool.write_config(path, efl_cfg, False, str(tmp_path / 'd.pkl'), 5, tool.MODELS['effnet-lite0'][0])
    cfg = Config.fromfile(path)
    assert cfg.model.head.loss.type == 'mmdet.EqualizedFocalLoss' and 'gamma_pos' not in cfg.model.head.loss
    assert all(h['type'] != 'ProbabilityGapHook' for h in cfg.custom_hooks)
    asl = str(tmp_path / 'asl.py')
    tool.write_config(asl, methods['per-class'][0], methods['per-class'][1], str(tmp_path / 'd.pkl'), 5,
                      tool.MODELS['effnet-lite0'][0])
    hooks = Config.fromfile(asl).custom_hooks
    assert [h['type'] for h in hooks] == ['ProbabilityGapHook'] and hooks[0]['adaptive']['per_class'] is True


def test_final_gamma_of_efl_from_the_checkpoint_statistics(tmp_path):
    pos = torch.tensor([1.0, 2.0], dtype=torch.float64)
    neg = torch.tensor([4.0, 1.0], dtype=torch.float64)
    torch.save(dict(state_dict={'head.loss_module.pos_grad': pos, 'head.loss_module.neg_grad': neg}),
               tmp_path / 'epoch_6.pth')
    # 2 + 8 * (1 - clamp(pos / neg, 0, 1)): ratios 0.25 and 1 (2 / 1 clamped)
    assert tool.final_gamma(str(tmp_path), 6) == pytest.approx([8.0, 2.0])


def test_val_curve_is_every_evaluation_in_epoch_order(tmp_path):
    log = tmp_path / '20260101_000000' / 'vis_data'
    log.mkdir(parents=True)
    lines = [{'loss': 1.0, 'step': 3}, {'multi-label/mAP': 70.0, 'step': 2}, {'multi-label/mAP': 60.0, 'step': 1}]
    (log / 'scalars.json').write_text(''.join(json.dumps(x) + '\n' for x in lines))
    assert tool.val_curve(str(tmp_path)) == [(1, 60.0), (2, 70.0)]


def test_report_reads_a_fixed_loss_without_gamma_from_result_json(tmp_path):
    """A fixed loss's gamma is null in result.json, which the strict loader reads back as NaN."""
    import numpy as np

    from mmdet_asl.utils.strict_json import dump_json, load_json
    rows = [dict(name='asl', seed=s, mAP=80.0 + s, CF1=70.0, ap=[50.0] * 10, gamma=None) for s in range(2)]
    rows += [dict(name='per-class', seed=s, mAP=81.0, CF1=71.0, ap=[50.0] * 10, gamma=[3.0] * 10) for s in range(2)]
    dump_json(rows, str(tmp_path / 'r.json'))
    args = type('A', (), dict(target=0.1, lam=0.05, clip_lam=0.005, model='effnet-lite0', epochs=6, seeds=[0, 1],
                              work_dir=str(tmp_path)))
    tool.report(load_json(str(tmp_path / 'r.json')), np.linspace(0.1, 1.0, 10), args)
    text = (tmp_path / 'results.md').read_text()
    assert '| asl (n = 2) | 80.50 ± 0.71 | 50.00 ± 0.00 | 70.00 ± 0.00 | 4 (fixed) |' in text
    assert '| per-class (n = 2) |' in text and '| 3.00 ± 0.00 |' in text

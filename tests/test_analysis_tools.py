"""tools/analysis_tools/plot_loss_curves.py and plot_probabilities.py compute what they claim."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools' / 'analysis_tools'))

import plot_loss_curves  # noqa: E402
import plot_probabilities  # noqa: E402


@pytest.mark.parametrize('gamma_neg,clip', [(2.0, 0.2), (4.0, 0.05), (2.0, 0.0)])
def test_mislabel_point_is_where_the_gradient_peaks(gamma_neg, clip):
    p_star = plot_loss_curves.mislabel_point(gamma_neg, clip)
    assert clip < p_star < 1

    def g(p):
        return float(plot_loss_curves.negative_loss_and_grad(torch.tensor([p], dtype=torch.float64),
                                                              gamma_neg, clip)[1])

    def slope(p, h=1e-5):
        return (g(p + h) - g(p - h)) / (2 * h)

    # d/dp (dL/dz) = 0 at p*: tiny next to the slope a little below it
    assert abs(slope(p_star)) < 1e-3 * abs(slope(p_star - 0.1))
    assert g(p_star) > g(p_star - 0.02) and g(p_star) > g(p_star + 0.02)


def test_negative_loss_curve_is_the_formula():
    p = torch.tensor([0.1, 0.3, 0.9], dtype=torch.float64)
    loss, grad = plot_loss_curves.negative_loss_and_grad(p, 2.0, 0.2)
    p_m = torch.clamp(p - 0.2, min=0)
    torch.testing.assert_close(loss, -(p_m ** 2) * torch.log(1 - p_m))
    assert loss[0] == 0 and grad[0] == 0


def test_plot_probabilities_reads_runs_and_writes_png(tmp_path):
    runs = []
    for name, dp0 in (('ce', -0.3), ('adaptive', -0.1)):
        vis = tmp_path / name / '20260101_000000' / 'vis_data'
        vis.mkdir(parents=True)
        lines = [json.dumps(dict(lr=0.1, loss=1.0, asl_pt_pos=0.5 + 0.01 * i, asl_pt_neg=0.8,
                                 asl_dp=dp0 + 0.01 * i, iter=i + 1, step=i + 1,
                                 **({'asl_gamma_neg': 4.0 + 0.1 * i} if name == 'adaptive' else {})))
                 for i in range(20)]
        lines.insert(5, json.dumps(dict(accuracy=0.5, step=5)))  # a validation record, skipped
        (vis / 'scalars.json').write_text('\n'.join(lines) + '\n')
        runs.append(str(tmp_path / name))
    curves = plot_probabilities.read_curves(runs[1])
    assert len(curves['dp']) == 20 and curves['gamma_neg'][-1] == pytest.approx(5.9)
    out = tmp_path / 'fig4.png'
    result = subprocess.run([sys.executable, str(ROOT / 'tools' / 'analysis_tools' / 'plot_probabilities.py'), *runs,
                             '--labels', 'CE', 'adaptive', '--out', str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 10_000
    assert 'CE: final Delta p (mean of the last 2 logged) = -0.115' in result.stdout
    assert 'final gamma- = 5.90' in result.stdout


def test_plot_probabilities_clear_error_without_probe(tmp_path):
    with pytest.raises(FileNotFoundError, match='ProbabilityGapHook'):
        plot_probabilities.read_curves(str(tmp_path))

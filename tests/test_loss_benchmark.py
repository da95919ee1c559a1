"""tools/benchmarks/benchmark_loss.py (a benchmark, not a timing test): a tiny eager run prints every row."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_loss_runs_and_prints_every_row():
    out = subprocess.run([sys.executable, str(ROOT / 'tools' / 'benchmarks' / 'benchmark_loss.py'), '--sizes', '300x7',
                          '--repeats', '1', '--warmup', '1', '--devices', 'cpu', '--skip', 'compiled'],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = {line.split('|')[1].strip(): line for line in out.stdout.splitlines() if line.startswith('| ')}
    for name in ('ASL fused, eager (ours)', 'ASL fused, eager, detection setting (ours)', 'ASL plain autograd',
                 'MMPretrain AsymmetricLoss', 'MMDet FocalLoss', 'torchvision sigmoid_focal_loss',
                 'BCE with logits (torch)', 'memory floor: x.clone().mul_(1)',
                 'AsymmetricQualityFocalLoss fused, eager (ours)', 'AsymmetricQualityFocalLoss plain autograd',
                 'MMDet QualityFocalLoss'):
        assert name in rows, out.stdout
    assert not any('compiled' in name for name in rows)
    ours_memory = float(rows['ASL fused, eager (ours)'].rstrip(' |').split('|')[-1])
    assert ours_memory <= 2.0, rows['ASL fused, eager (ours)']  # the gradient, plus at most one N x C
    assert 'ASL fused, eager (ours) time = ' in out.stdout and 'x BCE with logits' in out.stdout
    assert 'AsymmetricQualityFocalLoss fused, eager (ours) time = ' in out.stdout
    assert 'x MMDet QualityFocalLoss' in out.stdout
    # The fused quality kernel keeps its gradient; the (N, C) qualities and positive mask the loss builds from
    # the tuple target are inputs of the kernel, not kept for backward.
    quality_memory = float(rows['AsymmetricQualityFocalLoss fused, eager (ours)'].rstrip(' |').split('|')[-1])
    assert quality_memory <= 3.0, rows['AsymmetricQualityFocalLoss fused, eager (ours)']


def test_benchmark_loss_only_keeps_the_named_rows():
    out = subprocess.run([sys.executable, str(ROOT / 'tools' / 'benchmarks' / 'benchmark_loss.py'), '--sizes', '50x3',
                          '--repeats', '1', '--warmup', '1', '--devices', 'cpu', '--only', 'Quality', 'floor',
                          '--skip', 'compiled'], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line.split('|')[1].strip() for line in out.stdout.splitlines() if line.startswith('| ')][1:]
    assert rows == ['memory floor: x.clone().mul_(1)', 'AsymmetricQualityFocalLoss fused, eager (ours)',
                    'AsymmetricQualityFocalLoss plain autograd', 'MMDet QualityFocalLoss'], out.stdout

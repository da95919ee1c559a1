"""Benchmark: forward + backward time and peak extra memory of ASL against the losses it replaces.

One process, identical inputs for every row. Prints a Markdown table per device and size.

    python tools/benchmarks/benchmark_loss.py               # CPU (and CUDA when available), all sizes
    python tools/benchmarks/benchmark_loss.py --sizes 40000x80 --repeats 5 --devices cpu
    python tools/benchmarks/benchmark_loss.py --only Quality BCE floor     # the quality focal loss rows

Rows:
  * ASL fused, compiled    : mmdet_asl, ``impl='compiled'`` (one torch.compile'd pass: loss and gradient)
  * ASL fused, eager       : the same kernel without torch.compile (``impl='eager'``, the default)
  * ... detection setting  : the same two, in the flagship detection config's setting (below)
  * ASL plain autograd     : Eq. 7 as specified (``ops/asl/reference.py``), autograd backward
  * MMPretrain ASL         : ``mmpretrain.models.losses.AsymmetricLoss`` (dense targets), autograd
  * MMDet FocalLoss        : ``mmdet.models.losses.FocalLoss``, its Python path (``py_sigmoid_focal_loss``)
                             on both devices (index labels on the CPU, one-hot targets on CUDA)
  * torchvision focal      : ``torchvision.ops.sigmoid_focal_loss`` (dense targets), autograd
  * BCE                    : ``F.binary_cross_entropy_with_logits`` (dense targets): the cheapest loss there is
  * memory floor           : ``x.clone().mul_(1)``, one read of the logits and one (N, C) write, no backward
  * AsymmetricQualityFocalLoss fused, compiled / eager, and plain autograd: mmdet_asl's quality focal loss with
                             ``impl='compiled'``, ``'eager'`` (the fused kernel, ``ops/asl/quality.py``) and
                             ``'reference'`` (``quality_asymmetric_loss_reference``, autograd backward)
  * MMDet QualityFocalLoss : ``mmdet.models.losses.QualityFocalLoss`` (beta = 2), autograd
ASL rows use gamma+ = 0, gamma- = 4, m = 0.05 (the paper's classification setting, MMPretrain's defaults)
unless marked "detection setting": gamma+ = 1, gamma- = 2, m = 0, the loss that replaces FocalLoss in
configs/fcos_tresnetm_asl.py. Focal rows gamma = 2, alpha = 0.25. All reduce to a scalar (mean), then
backward. Ratios printed under each table: classification-setting ASL against MMPretrain's ASL (same
setting), both settings against FocalLoss, BCE and the memory floor. Quality focal loss rows take GFL's tuple
target (labels, quality scores), scores uniform in [0, 1) on the foreground anchors; ours with gamma+ = 2,
gamma- = 4, m = 0 (``beta=2.0, gamma_neg=4.0``), QualityFocalLoss with beta = 2; ratios against
QualityFocalLoss, BCE and the memory floor.

Time: median of ``--repeats`` runs after ``--warmup`` runs; the repeats are interleaved across rows (one
step of each row per round). Memory: peak bytes allocated during forward +
backward above what was allocated before (inputs excluded, the returned gradient included), from the
CUDA allocator on GPU and from the PyTorch profiler's allocation events on CPU. The one-time cost of
torch.compile (first call minus a steady call) is reported separately.
"""
import argparse
import os
import statistics
import time

import torch

BCE = 'BCE with logits (torch)'
FLOOR = 'memory floor: x.clone().mul_(1)'
QFL = 'MMDet QualityFocalLoss'
AQFL = 'AsymmetricQualityFocalLoss'
RATIOS = (('ASL fused, compiled (ours)', ('MMPretrain AsymmetricLoss', 'MMDet FocalLoss', BCE, FLOOR)),
          ('ASL fused, compiled, detection setting (ours)', ('MMDet FocalLoss', BCE, FLOOR)),
          ('ASL fused, eager (ours)', ('MMPretrain AsymmetricLoss', BCE, FLOOR)),
          ('ASL fused, eager, detection setting (ours)', ('MMDet FocalLoss', BCE, FLOOR)),
          (f'{AQFL} fused, compiled (ours)', (QFL, BCE, FLOOR)),
          (f'{AQFL} fused, eager (ours)', (QFL, BCE, FLOOR)),
          (f'{AQFL} plain autograd', (QFL, )))


def parse_size(text):
    n, c = text.lower().split('x')
    return int(n), int(c)


def make_rows():
    import torch.nn.functional as F
    from torchvision.ops import sigmoid_focal_loss

    from mmdet.models.losses import FocalLoss, QualityFocalLoss

    from mmdet_asl.models import AsymmetricLoss, AsymmetricQualityFocalLoss
    from mmdet_asl.ops.asl import asymmetric_loss_reference

    focal = FocalLoss(gamma=2.0, alpha=0.25)
    rows = []
    for impl in ('compiled', 'eager'):
        ours = AsymmetricLoss(gamma_pos=0.0, gamma_neg=4.0, clip=0.05, impl=impl)
        ours_detection = AsymmetricLoss(gamma_pos=1.0, gamma_neg=2.0, clip=0.0, impl=impl)
        rows += [(f'ASL fused, {impl} (ours)', lambda z, labels, dense, score, loss=ours: loss(z, labels)),
                 (f'ASL fused, {impl}, detection setting (ours)',
                  lambda z, labels, dense, score, loss=ours_detection: loss(z, labels))]
    rows.append(('ASL plain autograd', lambda z, labels, dense, score: asymmetric_loss_reference(
        z, dense, gamma_pos=0.0, gamma_neg=4.0, clip=0.05).mean()))
    try:
        from mmpretrain.models.losses import AsymmetricLoss as MMPretrainASL
        mmpretrain_asl = MMPretrainASL(gamma_pos=0.0, gamma_neg=4.0, clip=0.05)
        rows.append(('MMPretrain AsymmetricLoss', lambda z, labels, dense, score: mmpretrain_asl(z, dense)))
    except ImportError:
        print('mmpretrain is not installed: no MMPretrain row')
    rows += [
        # One-hot targets on the GPU keep FocalLoss on its Python path (its CUDA path is mmcv's compiled op).
        ('MMDet FocalLoss', lambda z, labels, dense, score: focal(z, dense if z.is_cuda else labels)),
        ('torchvision sigmoid_focal_loss', lambda z, labels, dense, score: sigmoid_focal_loss(
            z, dense, alpha=0.25, gamma=2.0, reduction='mean')),
        (BCE, lambda z, labels, dense, score: F.binary_cross_entropy_with_logits(z, dense)),
        (FLOOR, lambda z, labels, dense, score: z.detach().clone().mul_(1)),
    ]
    for impl, kind in (('compiled', 'fused, compiled (ours)'), ('eager', 'fused, eager (ours)'),
                       ('reference', 'plain autograd')):
        ours_quality = AsymmetricQualityFocalLoss(beta=2.0, gamma_neg=4.0, clip=0.0, impl=impl)
        rows.append((f'{AQFL} {kind}', lambda z, labels, dense, score, loss=ours_quality: loss(z, (labels, score))))
    qfl = QualityFocalLoss(beta=2.0)
    rows.append((QFL, lambda z, labels, dense, score: qfl(z, (labels, score))))
    return rows


def synchronize(device):
    if device == 'cuda':
        torch.cuda.synchronize()


def step(fn, z, labels, dense, score):
    z.grad = None
    loss = fn(z, labels, dense, score)
    if loss.requires_grad:  # the memory floor has no backward
        loss.backward()
    return loss


def peak_extra_bytes(fn, z, labels, dense, score, device):
    if device == 'cuda':
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step(fn, z, labels, dense, score)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    z.grad = None
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step(fn, z, labels, dense, score)
    # Allocation timeline from each event's *self* bytes (its children's excluded, so nothing counts
    # twice), in start order. A transient freed inside one operator nets out: this is a lower bound.
    events = sorted(prof.events(), key=lambda e: e.time_range.start)
    current = peak = 0
    for event in events:
        current += event.self_cpu_memory_usage
        peak = max(peak, current)
    return peak


def timed_step(fn, z, labels, dense, score, device):
    synchronize(device)
    t0 = time.perf_counter()
    step(fn, z, labels, dense, score)
    synchronize(device)
    return time.perf_counter() - t0


def bench(rows, z, labels, dense, score, device, warmup, repeats):
    """{name: (median time, first-call time, peak extra bytes)}. The timed repeats are interleaved, one
    step of every row per round, so that a slow stretch of a shared machine (or the compiler's worker
    processes winding down) weighs on every row alike rather than on whichever row it overlaps."""
    first = {}
    for name, fn in rows:
        first[name] = timed_step(fn, z, labels, dense, score, device)
        for _ in range(max(warmup - 1, 0)):
            step(fn, z, labels, dense, score)
    times = {name: [] for name, _ in rows}
    for _ in range(repeats):
        for name, fn in rows:
            times[name].append(timed_step(fn, z, labels, dense, score, device))
    return {name: (statistics.median(times[name]), first[name],
                   peak_extra_bytes(fn, z, labels, dense, score, device))
            for name, fn in rows}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', nargs='+', default=['40000x80', '340000x80', '100000x1000'])
    parser.add_argument('--devices', nargs='+', default=None)
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--skip', nargs='*', default=[], help='substrings of row names to skip')
    parser.add_argument('--only', nargs='*', default=[], help='substrings of row names to keep (default: all)')
    parser.add_argument('--threads', type=int, help='CPU threads (torch.set_num_threads)')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices or (['cpu'] + (['cuda'] if torch.cuda.is_available() else []))
    rows = [r for r in make_rows() if not any(s in r[0] for s in args.skip)
            and (not args.only or any(s in r[0] for s in args.only))]
    print(f'torch {torch.__version__}, threads {torch.get_num_threads()}')
    for device in devices:
        if device == 'cuda':
            print(f'device: cuda ({torch.cuda.get_device_name()})')
        else:
            import platform
            print(f'device: cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)')
        for size in args.sizes:
            n, c = parse_size(size)
            gen = torch.Generator().manual_seed(0)
            z = (torch.randn(n, c, generator=gen) * 3 - 4).to(device).requires_grad_(True)
            labels = torch.randint(0, c + 1, (n, ), generator=gen).to(device)  # c = background
            dense = torch.nn.functional.one_hot(labels, c + 1)[:, :c].float()
            score = torch.rand(n, generator=gen).to(device)  # quality scores (read on foreground anchors)
            tensor_mb = n * c * 4 / 2**20
            print(f'\n(N, C) = ({n}, {c}); one N x C float32 tensor = {tensor_mb:.1f} MiB; '
                  f'median of {args.repeats} after {args.warmup} warm-up\n')
            print('| loss | fwd+bwd (ms) | first call (s) | peak extra memory (MiB) | memory / (N x C fp32) |')
            print('|---|---:|---:|---:|---:|')
            results = {}
            for name, (median, first, peak) in bench(rows, z, labels, dense, score, device, args.warmup,
                                                     args.repeats).items():
                results[name] = median
                print(f'| {name} | {median * 1e3:.1f} | {first:.1f} | {peak / 2**20:.1f} | '
                      f'{peak / (n * c * 4):.2f} |', flush=True)
            print()
            for ours, baselines in RATIOS:
                if ours in results:
                    ratios = ', '.join(f'{results[ours] / results[name]:.3f}x {name}' for name in baselines
                                       if name in results)
                    print(f'{ours} time = {ratios}')
            del z, labels, dense, score


if __name__ == '__main__':
    main()

"""Paper Figs. 2-3 through the project's own loss, and the mislabel point p*.

    python tools/analysis_tools/plot_loss_curves.py --out-dir docs --gamma-neg 2 --clip 0.2

Fig. 2: the loss of a negative label vs its probability p, for CE, focal loss (gamma = 2) and the
probability-shifted focal loss (gamma- = 2, m = 0.2).
Fig. 3: the normalised gradient magnitude |dL/dz| of a negative vs p, for CE, CE + probability shifting
(CE+PS: gamma = 0, m), asymmetric focusing (AF: gamma-, m = 0) and ASL (gamma-, m). Each curve is divided
by its maximum over p.
Every value and gradient comes from ``mmdet_asl.ops.asl.asymmetric_loss`` and its analytic backward.

The mislabel point p* (paper Sec. 2.5): for ASL, dL/dz of a negative grows with p up to p* and then
falls, so the loss gives less gradient to very confident negatives (likely missing positive labels).
p* is where d/dp (dL/dz) = 0, found by maximising dL/dz over p.
"""
import argparse
import os

import torch

from mmdet_asl.ops.asl import asymmetric_loss

GRID = torch.linspace(1e-4, 1 - 1e-4, 4001, dtype=torch.float64)


def negative_loss_and_grad(p: torch.Tensor, gamma_neg: float, clip: float, gamma_pos: float = 0.0):
    """Loss and dL/dz of a negative label (y = 0) at probabilities p, through the project's loss."""
    z = torch.logit(p).view(-1, 1).clone().requires_grad_(True)
    loss = asymmetric_loss(z, torch.zeros_like(z), gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip)
    grad, = torch.autograd.grad(loss.sum(), z)
    return loss.detach().view(-1), grad.view(-1)


def mislabel_point(gamma_neg: float, clip: float) -> float:
    """p* = argmax over p of dL/dz for a negative (d/dp (dL/dz) = 0), refined by golden-section search."""
    _, grad = negative_loss_and_grad(GRID, gamma_neg, clip)
    i = int(torch.argmax(grad))
    lo, hi = float(GRID[max(i - 1, 0)]), float(GRID[min(i + 1, len(GRID) - 1)])
    ratio = (5 ** 0.5 - 1) / 2

    def g(p):
        return float(negative_loss_and_grad(torch.tensor([p], dtype=torch.float64), gamma_neg, clip)[1])

    for _ in range(60):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if g(a) > g(b):
            hi = b
        else:
            lo = a
    return (lo + hi) / 2


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out-dir', default='docs')
    parser.add_argument('--gamma-neg', type=float, default=2.0, help='gamma- of the focal/AF/ASL curves')
    parser.add_argument('--clip', type=float, default=0.2, help='probability margin m of the PS/ASL curves')
    args = parser.parse_args()

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    os.makedirs(args.out_dir, exist_ok=True)
    g, m = args.gamma_neg, args.clip
    p = GRID.numpy()

    fig2 = {'CE': (0.0, 0.0), f'focal loss, $\\gamma$={g:g}': (g, 0.0),
            f'prob. shifted focal, $\\gamma_-$={g:g}, m={m:g}': (g, m)}
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (gamma, clip) in fig2.items():
        loss, _ = negative_loss_and_grad(GRID, gamma, clip)
        ax.plot(p, loss.numpy(), label=label)
    ax.set(xlabel='p (probability of a negative label)', ylabel='loss', ylim=(0, 4),
           title='Fig. 2: loss of a negative vs p')
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path2 = os.path.join(args.out_dir, 'fig2_negative_loss.png')
    fig.savefig(path2, dpi=120)

    fig3 = {'CE': (0.0, 0.0), f'CE+PS (m={m:g})': (0.0, m), f'AF ($\\gamma_-$={g:g})': (g, 0.0),
            f'ASL ($\\gamma_-$={g:g}, m={m:g})': (g, m)}
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (gamma, clip) in fig3.items():
        _, grad = negative_loss_and_grad(GRID, gamma, clip)
        ax.plot(p, (grad.abs() / grad.abs().max()).numpy(), label=label)
    p_star = mislabel_point(g, m)
    ax.axvline(p_star, color='gray', linestyle=':', label=f'ASL mislabel point p* = {p_star:.3f}')
    ax.set(xlabel='p (probability of a negative label)', ylabel='normalised |dL/dz|',
           title='Fig. 3: gradient magnitude of a negative vs p')
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path3 = os.path.join(args.out_dir, 'fig3_negative_gradient.png')
    fig.savefig(path3, dpi=120)

    print(f'wrote {path2} and {path3}')
    print(f'mislabel point p* (gamma- = {g:g}, m = {m:g}): {p_star:.4f}')
    for gamma, clip in ((4.0, 0.05), (2.0, 0.0), (g, m)):
        print(f'  gamma- = {gamma:g}, m = {clip:g}: p* = {mislabel_point(gamma, clip):.4f}')


if __name__ == '__main__':
    main()

#!/usr/bin/env python
"""Mutation testing of the probe (Eq. 9-10), the kernel's probe sums and the adaptive controller (Eq. 11).

Each mutation is a small deliberate bug (a source edit); the chosen tests must fail on it ("killed"). A
mutation the tests survive marks a gap in the tests. The working tree is never touched: the repository's
files are copied into a temporary folder, each mutation is applied to the copy, the tests run there
(``PYTHONPATH`` points at the copy), and the file is restored before the next one.

    python tools/misc/mutation_test.py                  # every mutation, its own tests
    python tools/misc/mutation_test.py --only hook      # names containing 'hook' (several texts: any)
    python tools/misc/mutation_test.py --list

Not part of CI (it runs the selected tests once per mutation); run it before a release. Exit status 1 when a
mutation survives or no longer applies (its source line changed: update the list).
"""
import argparse
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
KERNEL = 'mmdet_asl/ops/asl/kernel.py'
HOOK = 'mmdet_asl/engine/probability_gap_hook.py'
CONTROLLER = 'mmdet_asl/engine/asymmetry_controller.py'
LOSS = 'mmdet_asl/models/losses/asymmetric_loss.py'
PROBE = 'tests/test_probability_gap.py'
PROBE_TESTS = (f'{PROBE}::test_probe_index_labels_by_hand', f'{PROBE}::test_probe_dense_targets_by_hand',
               f'{PROBE}::test_probe_per_class_by_hand')
CONTROLLER_TESTS = (PROBE, )
HOOK_TESTS = ('tests/test_probability_gap_hook.py', )
LOSS_TESTS = (f'{PROBE}::test_half_keeps_probe_sums_and_gamma_in_float64',
              f'{PROBE}::test_gamma_neg_is_not_model_state',
              f'{PROBE}::test_per_class_gamma_and_margin_through_the_kernel_equal_the_reference')


class Mutation(NamedTuple):
    name: str
    path: str
    old: str
    new: str
    tests: Tuple[str, ...]


MUTATIONS = [
    # ------------------------------------------------------------------- the kernel's probe sums (Eq. 9-10)
    Mutation('kernel: index labels, the positive count ignores weight-0 slots', KERNEL,
             'num_pos = _sum64(counted_at)', 'num_pos = _sum64(foreground.to(z.dtype))', PROBE_TESTS),
    Mutation('kernel: dense targets, p_t- from p instead of 1 - p', KERNEL,
             'negative * parts.q', 'negative * parts.p', PROBE_TESTS),
    Mutation('kernel: dense targets, weight-0 slots counted', KERNEL,
             'counted = 1.0 if weight is None else (weight > 0).to(z.dtype)', 'counted = 1.0', PROBE_TESTS),
    Mutation('kernel: index labels, negatives keep the positive slot', KERNEL,
             '_sum64(counted * parts.q) - _sum64(counted_at * parts_at.q)', '_sum64(counted * parts.q)',
             PROBE_TESTS),
    Mutation('kernel: index labels, background rows give positives', KERNEL,
             'counted_at = foreground.to(z.dtype) *', 'counted_at = torch.ones_like(foreground, dtype=z.dtype) *',
             PROBE_TESTS),
    Mutation('kernel: per class, index positives all credited to class 0', KERNEL,
             'rows = cls.squeeze(1)', 'rows = torch.zeros_like(cls.squeeze(1))', PROBE_TESTS),
    Mutation('kernel: per class, classes out of order', KERNEL,
             'torch.stack([t.sum(0, dtype=torch.float64) for t in terms], dim=1)',
             'torch.stack([t.sum(0, dtype=torch.float64).flip(0) for t in terms], dim=1)', PROBE_TESTS),
    Mutation('kernel: adaptive m ignored by the formulas (m = 0 path)', KERNEL,
             'return isinstance(clip, Tensor) or clip > 0', 'return not isinstance(clip, Tensor) and clip > 0',
             LOSS_TESTS),
    # --------------------------------------------------------------------------------------- the loss
    Mutation('loss: .half() casts gamma- and the probe sums', LOSS,
             "_FLOAT64_BUFFERS = ('gamma_neg_buffer', 'clip_buffer', 'probe_sums')", '_FLOAT64_BUFFERS = ()',
             LOSS_TESTS),
    Mutation("loss: a checkpoint's gamma- is loaded", LOSS,
             "state_dict.pop(prefix + 'gamma_neg_buffer', None)",
             "self.gamma_neg = float(state_dict.pop(prefix + 'gamma_neg_buffer', self.gamma_neg))", LOSS_TESTS),
    # --------------------------------------------------------------------------------- the controller
    Mutation('controller: warm-up ignored', CONTROLLER,
             "if iteration < self.cfg['warmup_iters']:", 'if False:', CONTROLLER_TESTS + HOOK_TESTS),
    Mutation('controller: Eq. 11 sign flipped (away from the target)', CONTROLLER,
             'self.target() - gap', 'gap - self.target()', CONTROLLER_TESTS + HOOK_TESTS),
    Mutation('controller: no bounds on gamma-', CONTROLLER,
             ".clamp(cfg['gamma_min'], cfg['gamma_max'])", '', CONTROLLER_TESTS + HOOK_TESTS),
    Mutation('controller: minimum count ignored', CONTROLLER,
             "(self.pending[..., 1] >= self.cfg['min_positives'])", '(self.pending[..., 1] > 0)', CONTROLLER_TESTS),
    Mutation('controller: pools never emptied', CONTROLLER, 'self.pending[ready] = 0.0', 'pass', CONTROLLER_TESTS),
    Mutation('controller: margin moves with the gamma- step', CONTROLLER,
             "(self.clip + cfg['clip_lam'] * shortfall)", "(self.clip + cfg['lam'] * shortfall)", CONTROLLER_TESTS),
    Mutation('controller: gamma_max = inf accepted', CONTROLLER,
             "if not math.isfinite(value):\n        raise ValueError(f'{name} must be finite, got {value}')",
             'pass', CONTROLLER_TESTS),
    # ----------------------------------------------------------------------------------------- the hook
    Mutation('hook: DDP all-reduce of the sums dropped', HOOK,
             "dist.all_reduce(flat, op='sum')", 'pass', HOOK_TESTS),
    Mutation('hook: logged p_t+ and p_t- swapped', HOOK,
             "(('pt_pos', pt_pos), ('pt_neg', pt_neg)", "(('pt_pos', pt_neg), ('pt_neg', pt_pos)", HOOK_TESTS),
    Mutation('hook: resume does not restore the adaptive state', HOOK,
             'self._loaded = checkpoint.get(CHECKPOINT_KEY)', 'self._loaded = None', HOOK_TESTS),
    Mutation('hook: state not saved in checkpoints', HOOK,
             'checkpoint.setdefault(CHECKPOINT_KEY, {}).update(', 'dict().update(', HOOK_TESTS),
    Mutation("hook: a fine-tune keeps the checkpoint's gamma-", HOOK,
             "use_checkpoint = resumed or self.adaptive['init'] == 'checkpoint'", 'use_checkpoint = True',
             HOOK_TESTS),
    Mutation('hook: every loss gets the first loss sums', HOOK,
             'for name, loss_sums in sums.items():', 'for name, loss_sums in ((n, next(iter(sums.values()))) '
             'for n in sums):', HOOK_TESTS),
    Mutation('hook: two hooks on one loss accepted', HOOK, '        if shared:\n', '        if False:\n',
             HOOK_TESTS),
]


def copy_tree(dst: str) -> None:
    """The repository's tracked and untracked-but-not-ignored files, as they are in the working tree."""
    files = subprocess.run(['git', 'ls-files', '--cached', '--others', '--exclude-standard'], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.splitlines()
    for rel in files:
        src = osp.join(ROOT, rel)
        if osp.isfile(src):
            os.makedirs(osp.dirname(osp.join(dst, rel)), exist_ok=True)
            shutil.copy2(src, osp.join(dst, rel))
    for name in ('.venv', 'data'):  # large and read-only for the tests: linked, not copied
        if osp.exists(osp.join(ROOT, name)):
            os.symlink(osp.join(ROOT, name), osp.join(dst, name))


def run_tests(copy: str, tests, timeout: int) -> Tuple[bool, float, str]:
    env = dict(os.environ, PYTHONPATH=copy + os.pathsep + os.environ.get('PYTHONPATH', ''))
    start = time.time()
    try:
        proc = subprocess.run([sys.executable, '-m', 'pytest', '-x', '-q', '-p', 'no:cacheprovider', *tests],
                              cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
        passed = proc.returncode == 0
        failed = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith(('FAILED', 'ERROR'))]
        caught_by = failed[0] if failed else ''
    except subprocess.TimeoutExpired:
        passed, caught_by = False, 'timeout'  # a hang counts as detected
    return passed, time.time() - start, caught_by


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--only', nargs='+', help='run the mutations whose name contains one of these texts')
    parser.add_argument('--list', action='store_true', help='list the mutations and exit')
    parser.add_argument('--timeout', type=int, default=900, help='seconds per test run')
    args = parser.parse_args(argv)
    mutations = [m for m in MUTATIONS if not args.only or any(text in m.name for text in args.only)]
    if args.list or not mutations:
        for m in mutations:
            print(f'{m.name}  [{m.path}; {" ".join(m.tests)}]')
        return 0 if mutations else 1
    results = []
    with tempfile.TemporaryDirectory(prefix='mutation_') as copy:
        copy_tree(copy)
        passed, seconds, _ = run_tests(copy, sorted({t for m in mutations for t in m.tests}), args.timeout)
        if not passed:
            print('the selected tests fail without any mutation: fix them first', file=sys.stderr)
            return 1
        print(f'baseline: tests pass ({seconds:.0f} s)')
        for m in mutations:
            path = osp.join(copy, m.path)
            with open(path) as f:
                original = f.read()
            if original.count(m.old) != 1:
                results.append((m, 'not applicable'))
                print(f'NOT APPLICABLE  {m.name}: {m.old!r} occurs {original.count(m.old)} times in {m.path}')
                continue
            try:
                with open(path, 'w') as f:
                    f.write(original.replace(m.old, m.new))
                passed, seconds, caught_by = run_tests(copy, m.tests, args.timeout)
            finally:
                with open(path, 'w') as f:
                    f.write(original)
            verdict = 'survived' if passed else 'killed'
            results.append((m, verdict))
            print(f'{verdict.upper():8s} {m.name} ({seconds:.0f} s){" by " + caught_by if caught_by else ""}',
                  flush=True)
    killed = sum(v == 'killed' for _, v in results)
    print(f'\nscore: {killed}/{len(results)} mutations killed')
    return 0 if killed == len(results) else 1


if __name__ == '__main__':
    sys.exit(main())

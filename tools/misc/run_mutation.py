#!/usr/bin/env python
"""Mutation testing of one module group with mutmut, in a temporary copy of the checkout.

Each mutant is a small change to one function (a comparison flipped, a constant changed, an argument
dropped...); the group's tests must fail on it ("killed"). A surviving mutant marks behaviour no test checks,
or a change that does not alter behaviour (an equivalent mutant).

    pip install -r requirements/mutation.txt
    python tools/misc/run_mutation.py --list
    python tools/misc/run_mutation.py preflight --out work_dirs/mutation/preflight
    python tools/misc/run_mutation.py compat --out work_dirs/mutation/compat --only 'mmdet_asl.compat.x__atomic*'

The checkout is never mutated: its committed files (``--working-tree``: also the uncommitted ones) are copied
into a temporary folder, and mutmut runs there under ``nice -n 10`` with the group's test files only. mutmut
imports the code and the tests once, records which tests reach each function, then forks one process per
mutant that runs only those tests, so a mutant costs its tests' time, not a fresh interpreter with torch.
Each mutant is stopped after ``(recorded test time + --timeout-constant) * --timeout-multiplier`` seconds
(twice that of CPU time; mutmut's own limits) and counted as a timeout, the whole run after ``--max-minutes``
(the mutants not reached are counted as not checked). ``--only`` passes mutmut name patterns
(``<module>.x_<function>*``) to test a subset. ``--keep`` keeps the copy; ``--resume COPY`` continues it, and
with other ``--timeout-*`` values re-tests only its timeouts.

``--out`` receives ``summary.json``, ``summary.md`` (counts per file, each mutant not killed and each timeout
with file:line and the change) and ``mutmut.log``. Not part of the test suite: it runs the group's tests once
per mutant.

mutmut only mutates code inside functions and methods (module-level constants are left alone), and keys each
mutant by the module name derived from its path: a script that the tests import as a top-level module from
``sys.path`` (tools/model_converters, tools/dataset_converters) cannot be matched with its tests, so such
files are listed as not mutated.
"""
import argparse
import ast
import datetime
import fnmatch
import glob
import io
import json
import os
import os.path as osp
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tokenize
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PACKAGE = 'mmdet_asl'
TOOL = 'mutmut'


class Group(NamedTuple):
    sources: Tuple[str, ...]  # glob patterns relative to the checkout
    tests: Tuple[str, ...]  # test files that import the group's modules (directly or through a tool)
    # Tests that read the package's source text, which mutmut's rewritten files (every mutant of a function
    # next to the original) fail by construction: deselected.
    deselect: Tuple[str, ...] = ()
    # Environment of the mutmut run (name, value), on top of the caller's.
    env: Tuple[Tuple[str, str], ...] = ()


# Test files per group: those that import the group's modules or their public names (grep of tests/), minus
# tests whose cost is compilation or whole training runs (the mutants' functions are reached by the others).
GROUPS: Dict[str, Group] = {
    'ops': Group(('mmdet_asl/ops/asl/*.py', ),
                 ('tests/test_loss_eager.py', 'tests/test_loss_errors.py', 'tests/test_loss_math.py',
                  'tests/test_loss_paths.py', 'tests/test_loss_validation.py', 'tests/test_probability_gap.py',
                  'tests/test_quality_focal_loss.py', 'tests/test_quality_kernel.py', 'tests/test_single_label_asl.py',
                  'tests/test_roi_head_asl.py', 'tests/test_mutation_survivors_ops.py'),
                 # MMDET_ASL_COMPILE=0 runs impl='compiled' as the eager kernel (the same code, unfused): a
                 # torch.compile per mutant would cost minutes. The test of the fallback after a compiler
                 # failure needs the compiled path, so it cannot run under it (test_mutation_survivors_ops.py
                 # checks the fallback with a stand-in compiler and the override switched off).
                 ('tests/test_quality_kernel.py::test_compiler_failure_runs_the_eager_kernel', ),
                 (('MMDET_ASL_COMPILE', '0'), )),
    'engine': Group(('mmdet_asl/engine/*.py', ),
                    ('tests/test_probability_gap.py', 'tests/test_probability_gap_hook.py',
                     'tests/test_controller_state.py', 'tests/test_channels_last_hook.py',
                     'tests/test_loss_validation.py', 'tests/test_mutation_survivors_engine.py'), (),
                    (('MMDET_ASL_COMPILE', '0'), )),
    'evaluation': Group(('mmdet_asl/evaluation/*.py', ),
                        ('tests/test_multilabel_metrics.py', 'tests/test_multilabel_datasets.py',
                         'tests/test_multilabel_test_tool.py', 'tests/test_test_tool_json.py',
                         'tests/test_mutation_survivors_evaluation.py')),
    'compat': Group(('mmdet_asl/compat.py', ),
                    ('tests/test_checkpoint_safety.py', 'tests/test_box_localization.py',
                     'tests/test_fault_injection.py', 'tests/test_mutation_survivors_compat.py'),
                    ('tests/test_checkpoint_safety.py::test_no_unrestricted_unpickling_in_the_package_and_tools', )),
    'datasets': Group(('mmdet_asl/datasets/*.py', ),
                      ('tests/test_multilabel_datasets.py', 'tests/test_coco_files.py',
                       'tests/test_loss_validation.py', 'tests/test_mutation_survivors_datasets.py')),
    'preflight': Group(('mmdet_asl/utils/preflight.py', ),
                       ('tests/test_preflight.py', 'tests/test_coco_files.py',
                        'tests/test_mutation_survivors_preflight.py')),
    'converters': Group(('tools/model_converters/*.py', 'tools/dataset_converters/*.py',
                         'mmdet_asl/models/backbones/efficientnet_lite_convert.py'),
                        ('tests/test_asl_official_converter.py', 'tests/test_converter_inputs.py',
                         'tests/test_efficientnet_lite.py', 'tests/test_longtail_canvases.py',
                         'tests/test_multilabel_datasets.py', 'tests/test_mutation_survivors_converters.py')),
}

# Test files that import a group's modules but are left out of its list, and why.
UNMAPPED_TESTS: Dict[str, str] = {
    'tests/test_loss_compiled.py': 'torch.compile of every mutant: minutes per mutant; eager tests cover the math',
    'tests/test_import_side_effects.py': 'imports in fresh interpreters, which never see the mutants',
    'tests/probe_paths.py': 'a helper module, not a test file',
    'tests/test_multilabel_configs.py': 'builds whole configs and checkpoints; its checks of the group\'s code are '
                                        'repeated by the mapped tests',
    'tests/test_longtail_canvases.py': 'uses the pre-flight check only to validate the converter\'s output (the '
                                       'converters group maps it)',
    'tests/test_canvas_axes.py': 'reads the converter\'s output with CocoMultiLabel; tests the converter, not the '
                                 'dataset',
}

# mutmut's exit codes (mutmut.stats.status_by_exit_code), grouped into the counts reported here.
KILLED, SURVIVED, TIMEOUT, INCOMPETENT, NO_TESTS, SKIPPED, NOT_CHECKED = (
    'killed', 'survived', 'timeout', 'incompetent', 'no_tests', 'skipped', 'not_checked')
BUCKETS = (KILLED, SURVIVED, TIMEOUT, INCOMPETENT, NO_TESTS, SKIPPED, NOT_CHECKED)
EXIT_CODES = {1: KILLED, 3: KILLED, 37: KILLED,  # a failing test, pytest's internal error, the type checker
              0: SURVIVED, 5: NO_TESTS, 33: NO_TESTS, 34: SKIPPED, None: NOT_CHECKED, 2: NOT_CHECKED,
              36: TIMEOUT, 24: TIMEOUT, -24: TIMEOUT, 152: TIMEOUT, 255: TIMEOUT}
# Anything else (35 "suspicious", -11 or -9 "segfault"): the mutant broke the test process itself.
# Listed with their change: the mutants not killed, and the timeouts (counted as caught, as mutmut does, but
# a loaded machine can make a slow test pass its limit: re-test them with --resume and a larger multiplier).
LISTED = (SURVIVED, NO_TESTS, INCOMPETENT, TIMEOUT)


def bucket_of(exit_code: Optional[int]) -> str:
    """The count an exit code of mutmut's .meta files goes to."""
    return EXIT_CODES.get(exit_code, INCOMPETENT)


def group_files(name: str, root: str = ROOT) -> Tuple[List[str], List[str]]:
    """The source files (sorted, relative to ``root``) and the test files of the group ``name``."""
    if name not in GROUPS:
        raise KeyError(f'unknown module group {name!r}; groups: {", ".join(GROUPS)}')
    group = GROUPS[name]
    sources = sorted({osp.relpath(path, root) for pattern in group.sources
                      for path in glob.glob(osp.join(root, pattern)) if not path.endswith('__init__.py')})
    return sources, list(group.tests)


def mutatable(path: str) -> bool:
    """mutmut can relate a file's mutants to its tests only inside the package (see the module docstring)."""
    return path.startswith(PACKAGE + '/')


def mutmut_config(sources: Sequence[str], tests: Sequence[str], also_copy: Sequence[str],
                  timeout_multiplier: float, timeout_constant: float, deselect: Sequence[str] = ()) -> str:
    """The ``[tool.mutmut]`` table appended to the copy's pyproject.toml."""
    def toml_list(items):
        return '[' + ', '.join(json.dumps(item) for item in items) + ']'

    pytest_args = ['-p', 'no:cacheprovider', '-q'] + [arg for test in deselect for arg in ('--deselect', test)]
    return '\n'.join([
        '', '[tool.mutmut]',
        f'source_paths = {toml_list([PACKAGE])}',
        f'only_mutate = {toml_list(sources)}',
        f'also_copy = {toml_list(also_copy)}',
        f'pytest_add_cli_args = {toml_list(pytest_args)}',
        f'pytest_add_cli_args_test_selection = {toml_list(tests)}',
        f'timeout_multiplier = {float(timeout_multiplier)}',
        f'timeout_constant = {float(timeout_constant)}',
        'use_git_change_detection = false', ''])


def _set_timeouts(pyproject: str, multiplier: float, constant: float) -> None:
    with open(pyproject) as f:
        text = f.read()
    text = re.sub(r'^timeout_multiplier = .*$', f'timeout_multiplier = {float(multiplier)}', text, flags=re.M)
    text = re.sub(r'^timeout_constant = .*$', f'timeout_constant = {float(constant)}', text, flags=re.M)
    with open(pyproject, 'w') as f:
        f.write(text)


# ------------------------------------------------------------------------------------------ the copy
def copy_checkout(dst: str, working_tree: bool) -> None:
    """Copy the committed files (or, with ``working_tree``, every file git does not ignore) into ``dst``."""
    if working_tree:
        listed = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=ROOT, check=True,
                                capture_output=True).stdout.decode().split('\0')
        for rel in filter(None, listed):
            src = osp.join(ROOT, rel)
            if not osp.lexists(src):  # deleted in the working tree, not yet committed
                continue
            os.makedirs(osp.join(dst, osp.dirname(rel)), exist_ok=True)
            if osp.islink(src):
                os.symlink(os.readlink(src), osp.join(dst, rel))
            else:
                shutil.copy2(src, osp.join(dst, rel))
    else:
        archive = subprocess.run(['git', 'archive', '--format=tar', 'HEAD'], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(['tar', '-x', '-C', dst], input=archive, check=True)
    # The package's OpenMMLab folder (git-ignored links, made by setup.py) for ``mmdet_asl::`` config paths.
    mim = osp.join(dst, PACKAGE, '.mim')
    os.makedirs(mim, exist_ok=True)
    for item in ('configs', 'tools', 'model-index.yml'):
        if osp.exists(osp.join(dst, item)):
            os.symlink(osp.join('..', '..', item), osp.join(mim, item))


# ----------------------------------------------------------------------------------- the summary
HUNK = re.compile(r'^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@')


def function_of(mutant: str) -> Tuple[str, Optional[str], str]:
    """(module, class or None, function) of a mutant name such as ``pkg.mod.xǁCǁf__mutmut_3``."""
    mangled = mutant.partition('__mutmut_')[0]
    module, _, name = mangled.rpartition('.')
    if name.startswith('xǁ'):
        _, cls, func = name.split('ǁ', 2)
        return module, cls, func
    if not name.startswith('x_'):
        raise ValueError(f'not a mutmut mutant name: {mutant!r}')
    return module, None, name[2:]


def function_span(source: str, cls: Optional[str], func: str) -> Optional[Tuple[int, int]]:
    """First (the ``def`` line) and last line of a top-level function or a method in ``source``."""
    body = ast.parse(source).body
    if cls is not None:
        body = next((node.body for node in body if isinstance(node, ast.ClassDef) and node.name == cls), [])
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == func:
            return node.lineno, node.end_lineno
    return None


def parse_diff(diff: str) -> Tuple[Optional[int], List[str], List[str]]:
    """(line of the first change within the function, counted from its ``def`` line as 1; removed lines;
    added lines) of mutmut's function-level unified diff."""
    offset, removed, added, position = None, [], [], None
    for line in diff.splitlines():
        match = HUNK.match(line)
        if match:
            position = int(match.group(1))
            continue
        if position is None or line.startswith(('---', '+++')):
            continue
        if line.startswith('-'):
            offset = position if offset is None else offset
            removed.append(line[1:])
            position += 1
        elif line.startswith('+'):
            offset = position if offset is None else offset
            added.append(line[1:])
        else:
            position += 1
    return offset, removed, added


def locate(source: str, mutant: str, diff: str) -> Optional[int]:
    """The line of ``source`` that a mutant changes: its first removed line, searched inside the function's
    span and nearest to where the diff's offset puts it (comments kept by mutmut may shift the offset)."""
    _, cls, func = function_of(mutant)
    span = function_span(source, cls, func)
    offset, removed, _ = parse_diff(diff)
    if span is None or offset is None:
        return None
    expected = span[0] + offset - 1
    if not removed:
        return expected
    lines = source.splitlines()
    wanted = removed[0].strip()
    candidates = [n for n in range(span[0], span[1] + 1) if lines[n - 1].strip() == wanted]
    return min(candidates, key=lambda n: abs(n - expected)) if candidates else expected


def _code_tokens(lines: Sequence[str]) -> Optional[List[Tuple[int, str]]]:
    """The tokens of ``lines`` with the text of string literals left out (an f-string keeps its ``{...}``
    fields); lines cut out of a longer statement may leave brackets open, the tokens read until then count."""
    tokens = []
    try:
        for t in tokenize.generate_tokens(io.StringIO('\n'.join(line.strip() for line in lines)).readline):
            if t.type == tokenize.STRING:
                prefix = t.string[:t.string.index(t.string[-1])].lower()
                tokens.append((t.type, ''.join(re.findall(r'\{[^{}]*\}', t.string)) if 'f' in prefix else ''))
            elif t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.ENDMARKER):
                tokens.append((t.type, t.string))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return tokens or None


def text_only(diff: str) -> bool:
    """Whether a mutant changes only the contents of string literals: a message's wording, but also a
    dictionary key or a separator, so these are listed apart, not taken as harmless."""
    _, removed, added = parse_diff(diff)
    if not removed or not added:
        return False
    before, after = _code_tokens(removed), _code_tokens(added)
    return before is not None and before == after


def describe(diff: str) -> str:
    """``old`` -> ``new`` of a mutant, its changed lines stripped (several joined by ' / ')."""
    _, removed, added = parse_diff(diff)
    return ' / '.join(r.strip() for r in removed) + ' -> ' + ' / '.join(a.strip() for a in added)


def summarize(meta_by_file: Dict[str, dict], diffs: Dict[str, str], sources: Dict[str, str],
              not_mutated: Sequence[str] = ()) -> dict:
    """Counts per file and in total, and the mutants that were not killed, from mutmut's .meta contents.

    Args:
        meta_by_file: source path -> the JSON of ``mutants/<path>.meta`` (``exit_code_by_key``).
        diffs: mutant name -> ``mutmut show`` diff, for the mutants not killed.
        sources: source path -> its text, to give each mutant's line.
        not_mutated: group files mutmut cannot mutate, listed as such.
    """
    per_file, survivors, timeouts = {}, [], []
    total = {bucket: 0 for bucket in BUCKETS}
    for path in sorted(meta_by_file):
        counts = {bucket: 0 for bucket in BUCKETS}
        for mutant, exit_code in sorted(meta_by_file[path].get('exit_code_by_key', {}).items(),
                                        key=lambda item: _natural(item[0])):
            bucket = bucket_of(exit_code)
            counts[bucket] += 1
            if bucket in LISTED:
                diff = diffs.get(mutant, '')
                line = locate(sources[path], mutant, diff) if diff and path in sources else None
                entry = dict(mutant=mutant, file=path, line=line, status=bucket, exit_code=exit_code,
                             mutation=describe(diff) if diff else None, text_only=text_only(diff), diff=diff)
                (timeouts if bucket == TIMEOUT else survivors).append(entry)
        counts['total'] = sum(counts.values())
        counts['score'] = score(counts)
        per_file[path] = counts
        for bucket in BUCKETS:
            total[bucket] += counts[bucket]
    total['total'] = sum(total[bucket] for bucket in BUCKETS)
    total['score'] = score(total)
    return dict(total=total, per_file=per_file, survivors=survivors, timeouts=timeouts,
                not_mutated=list(not_mutated), text_only_survivors=sum(1 for s in survivors if s['text_only']))


def score(counts: dict) -> Optional[float]:
    """Killed (timeouts included, as mutmut counts them) over the mutants that ran or had no test to run."""
    caught = counts[KILLED] + counts[TIMEOUT]
    judged = caught + counts[SURVIVED] + counts[NO_TESTS]
    return round(100.0 * caught / judged, 1) if judged else None


def _natural(name: str):
    head, _, number = name.rpartition('__mutmut_')
    return (head, int(number) if number.isdigit() else 0)


def markdown(summary: dict) -> str:
    """The summary as markdown: run facts, a table per file, the mutants not killed."""
    def cell(text):
        return str(text).replace('|', '\\|').replace('`', "'")

    columns = ('total', KILLED, TIMEOUT, SURVIVED, NO_TESTS, INCOMPETENT, SKIPPED, NOT_CHECKED, 'score')
    out = [f"# Mutation testing: {summary['group']}", '',
           f"- date: {summary['date']}; tool: {summary['tool']} {summary['tool_version']}",
           f"- command: `{summary['command']}`",
           f"- tests: {', '.join(summary['tests'])}",
           f"- per-mutant limit: (test time + {summary['timeout_constant']} s) x {summary['timeout_multiplier']} "
           f"(CPU time: twice that); wall time of the run {summary['wall_s']} s"]
    if summary.get('only'):
        out.append(f"- subset: {', '.join(summary['only'])}")
    out += ['', '| file | ' + ' | '.join(columns) + ' |', '|' + '---|' * (len(columns) + 1)]
    rows = list(summary['per_file'].items()) + [('**all**', summary['total'])]
    for path, counts in rows:
        values = ['' if counts[c] is None else counts[c] for c in columns]
        out.append(f'| {path} | ' + ' | '.join(str(v) for v in values) + ' |')
    if summary['not_mutated']:
        out += ['', 'Not mutated (scripts the tests import from sys.path): ' + ', '.join(summary['not_mutated'])]
    text = [s for s in summary['survivors'] if s['text_only']]
    code = [s for s in summary['survivors'] if not s['text_only']]
    for title, survivors in ((f'Not killed, code ({len(code)})', code),
                             (f'Not killed, string literals only ({len(text)}; wording, keys, separators)', text)):
        out += ['', f'## {title}', '']
        for s in survivors:
            where = f"{s['file']}:{s['line']}" if s['line'] else s['file']
            out.append(f"- `{where}` {s['status']}: `{cell(s['mutation'] or '?')}` ({s['mutant']})")
    if summary.get('timeouts'):
        out += ['', f"## Timeouts ({len(summary['timeouts'])}; counted as caught)", '']
        for s in summary['timeouts']:
            where = f"{s['file']}:{s['line']}" if s['line'] else s['file']
            out.append(f"- `{where}`: `{cell(s['mutation'] or '?')}` ({s['mutant']})")
    return '\n'.join(out) + '\n'


# ------------------------------------------------------------------------------------------ the run
def run_mutmut(copy: str, only: Sequence[str], max_children: int, max_minutes: float, log_path: str,
               extra_env: Sequence[Tuple[str, str]] = ()) -> int:
    """``nice -n 10 python -m mutmut run`` in ``copy`` (``extra_env`` added to the environment); interrupted
    (SIGINT, then SIGKILL) after the limit."""
    cmd = ['nice', '-n', '10', sys.executable, '-m', 'mutmut', 'run', '--max-children', str(max_children),
           *only]
    # One OpenMP/MKL thread: mutmut forks each mutant from a process that has run torch, and a forked child
    # that enters a parallel region of the parent's GNU OpenMP team waits forever at its barrier (a hang
    # that mutmut would count as a timeout, i.e. as caught). One thread per process also suits shared cores.
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1', OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    env.update(extra_env)
    env.pop('PYTHONPATH', None)  # the copy's mutants/ folder comes first on sys.path (mutmut puts it there)
    with open(log_path, 'wb') as log:
        proc = subprocess.Popen(cmd, cwd=copy, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        try:
            return proc.wait(timeout=max_minutes * 60)
        except subprocess.TimeoutExpired:
            print(f'--max-minutes {max_minutes} reached: stopping mutmut (pid {proc.pid})', flush=True)
            os.killpg(proc.pid, signal.SIGINT)
            try:
                return proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                return proc.wait()


def diffs_of(copy: str, mutants: Sequence[str]) -> Dict[str, str]:
    """mutmut's diff of each mutant, read in one process (``mutmut show`` does the same per mutant)."""
    if not mutants:
        return {}
    script = ('import json, sys\n'
              'from mutmut.mutation.diff_apply import get_diff_for_mutant\n'
              'out = {}\n'
              'for name in json.load(sys.stdin):\n'
              '    try:\n'
              '        out[name] = get_diff_for_mutant(name)\n'
              '    except Exception as exc:\n'
              "        out[name] = ''\n"
              "        print(f'{name}: {exc!r}', file=sys.stderr)\n"
              'print(json.dumps(out))\n')
    result = subprocess.run([sys.executable, '-c', script], cwd=copy, input=json.dumps(list(mutants)),
                            capture_output=True, text=True)
    if result.returncode != 0:
        print(f'reading the diffs failed:\n{result.stderr[-2000:]}', file=sys.stderr)
        return {}
    return json.loads(result.stdout.strip().splitlines()[-1])


def tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(TOOL)
    except PackageNotFoundError:
        sys.exit(f'{TOOL} is not installed in {sys.executable}: pip install -r requirements/mutation.txt')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('group', nargs='?', choices=sorted(GROUPS), help='module group to mutate')
    parser.add_argument('--out', help='folder for summary.json, summary.md and mutmut.log')
    parser.add_argument('--list', action='store_true', help='print each group\'s files and tests, and exit')
    parser.add_argument('--only', action='append', default=[],
                        help='mutmut mutant name pattern, e.g. "mmdet_asl.compat.x_load*" (several: any)')
    parser.add_argument('--max-children', type=int, default=2, help='mutants tested at once (default 2)')
    parser.add_argument('--timeout-multiplier', type=float, default=3.0,
                        help='per-mutant limit: (test time + constant) x this seconds (default 3)')
    parser.add_argument('--timeout-constant', type=float, default=5.0, help='seconds (default 5)')
    parser.add_argument('--max-minutes', type=float, default=60.0, help='limit of the whole run (default 60)')
    parser.add_argument('--working-tree', action='store_true',
                        help='copy uncommitted changes too (default: the committed files, HEAD)')
    parser.add_argument('--keep', action='store_true', help='keep the temporary copy (its path is printed)')
    parser.add_argument('--resume', metavar='COPY',
                        help='a copy kept by --keep: test only its mutants not checked yet, then summarize '
                             '(kept again); with other --timeout-* values, its timeouts are re-tested')
    args = parser.parse_args(argv)
    if not args.list and (args.group is None or args.out is None):
        parser.error('a group and --out are required (or --list)')
    if args.max_children < 1:
        parser.error(f'--max-children must be >= 1, got {args.max_children}')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list:
        for name in GROUPS:
            sources, tests = group_files(name)
            print(f'{name}:\n  sources: {" ".join(sources)}\n  tests:   {" ".join(tests)}')
        return 0
    version = tool_version()
    sources, tests = group_files(args.group)
    missing = [t for t in tests if not osp.isfile(osp.join(ROOT, t))]
    if missing:
        sys.exit(f'group {args.group!r}: test files not found: {", ".join(missing)}')
    mutated = [s for s in sources if mutatable(s)]
    not_mutated = [s for s in sources if not mutatable(s)]
    if not mutated:
        sys.exit(f'group {args.group!r}: no file mutmut can mutate ({", ".join(not_mutated)}: see --help)')
    os.makedirs(args.out, exist_ok=True)
    command = ' '.join(['python', 'tools/misc/run_mutation.py'] + (sys.argv[1:] if argv is None else list(argv)))
    start = time.time()
    if args.resume:
        copy, args.keep = osp.abspath(args.resume), True
        if not osp.isdir(osp.join(copy, 'mutants')):
            sys.exit(f'--resume {args.resume}: not a copy kept by --keep (no mutants/ folder)')
    else:
        copy = tempfile.mkdtemp(prefix=f'mutation_{args.group}_')
    try:
        if args.resume:  # mutmut re-tests only its timeouts when these settings change
            _set_timeouts(osp.join(copy, 'pyproject.toml'), args.timeout_multiplier, args.timeout_constant)
        else:
            copy_checkout(copy, args.working_tree)
            also_copy = sorted(e for e in os.listdir(copy) if e not in (PACKAGE, 'tests', 'pyproject.toml'))
            with open(osp.join(copy, 'pyproject.toml'), 'a') as f:
                f.write(mutmut_config(mutated, tests, also_copy, args.timeout_multiplier, args.timeout_constant,
                                      GROUPS[args.group].deselect))
        print(f'{args.group}: mutating {", ".join(mutated)} in {copy}, tests: {" ".join(tests)}', flush=True)
        rc = run_mutmut(copy, args.only, args.max_children, args.max_minutes, osp.join(args.out, 'mutmut.log'),
                        GROUPS[args.group].env)
        meta_by_file = {}
        for path in mutated:
            meta = osp.join(copy, 'mutants', path + '.meta')
            if osp.isfile(meta):
                with open(meta) as f:
                    meta_by_file[path] = json.load(f)
        if not meta_by_file:
            print(f'mutmut (exit status {rc}) left no results; see {osp.join(args.out, "mutmut.log")}',
                  file=sys.stderr)
            return 2
        if args.only:  # mutmut lists every mutant of a file; keep those of the subset
            for meta in meta_by_file.values():
                meta['exit_code_by_key'] = {k: v for k, v in meta['exit_code_by_key'].items()
                                            if any(fnmatch.fnmatch(k, p) or k == p for p in args.only)}
        open_mutants = [k for meta in meta_by_file.values() for k, v in meta['exit_code_by_key'].items()
                        if bucket_of(v) in LISTED]
        texts = {}
        for path in mutated:
            with open(osp.join(copy, path)) as f:
                texts[path] = f.read()
        summary = summarize(meta_by_file, diffs_of(copy, open_mutants), texts, not_mutated)
        summary.update(group=args.group, tool=TOOL, tool_version=version, mutmut_exit_status=rc,
                       date=datetime.date.today().isoformat(), command=command, sources=mutated, tests=tests,
                       only=args.only, timeout_multiplier=args.timeout_multiplier,
                       timeout_constant=args.timeout_constant, wall_s=round(time.time() - start))
        if summary['total'][NOT_CHECKED] == summary['total']['total'] and rc != 0:
            print(f'mutmut stopped (exit status {rc}) before testing any mutant; the clean test run in the copy '
                  f'probably failed: see {osp.join(args.out, "mutmut.log")}', file=sys.stderr)
            return 2
        with open(osp.join(args.out, 'summary.json'), 'w') as f:
            json.dump(summary, f, indent=1)
        with open(osp.join(args.out, 'summary.md'), 'w') as f:
            f.write(markdown(summary))
        t = summary['total']
        print(f"{args.group}: {t['total']} mutants, {t[KILLED]} killed, {t[TIMEOUT]} timeout, {t[SURVIVED]} "
              f"survived, {t[NO_TESTS]} without tests, {t[INCOMPETENT]} incompetent, {t[NOT_CHECKED]} not "
              f"checked; score {t['score']}%; {osp.join(args.out, 'summary.md')}")
        return 0
    finally:
        if args.keep:
            print(f'copy kept: {copy}')
        else:
            shutil.rmtree(copy, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())

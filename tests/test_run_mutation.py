"""tools/misc/run_mutation.py without a mutation run: its module group -> files map, the reading of mutmut's
results (exit codes, function-level diffs) into counts and file:line, and the mutmut configuration it writes."""
import glob
import os.path as osp
import re
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'tools', 'misc'))
import run_mutation as rm  # noqa: E402


@pytest.mark.parametrize('name', sorted(rm.GROUPS))
def test_every_group_names_existing_sources_and_tests(name):
    sources, tests = rm.group_files(name)
    assert sources, f'{name}: no source file matches {rm.GROUPS[name].sources}'
    for path in sources + tests:
        assert osp.isfile(osp.join(ROOT, path)), path
    assert not any(p.endswith('__init__.py') for p in sources)


def test_groups_hold_the_files_the_task_names():
    assert rm.group_files('preflight')[0] == ['mmdet_asl/utils/preflight.py']
    assert rm.group_files('compat')[0] == ['mmdet_asl/compat.py']
    converters = rm.group_files('converters')[0]
    assert 'mmdet_asl/models/backbones/efficientnet_lite_convert.py' in converters
    assert 'tools/model_converters/efficientnet_lite_to_mmdet.py' in converters
    assert set(rm.group_files('ops')[0]) == {
        osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'mmdet_asl/ops/asl/*.py'))
        if not p.endswith('__init__.py')}
    with pytest.raises(KeyError, match="unknown module group 'nope'"):
        rm.group_files('nope')


@pytest.mark.parametrize('name', sorted(rm.GROUPS))
def test_test_files_that_import_a_group_are_mapped_or_excused(name):
    """A test file importing one of the group's modules by path is in the group's list or in UNMAPPED_TESTS."""
    sources, tests = rm.group_files(name)
    modules = {osp.splitext(p)[0].replace('/', '.') for p in sources if rm.mutatable(p)}
    # a whole package's modules are also imported through it (``from mmdet_asl.datasets import ...``)
    modules |= {osp.dirname(p).replace('/', '.') for p in rm.GROUPS[name].sources
                if p.endswith('/*.py') and rm.mutatable(p)}
    pattern = re.compile(r'^\s*(from|import)\s+(' + '|'.join(re.escape(m) for m in modules) + r')(\s|$|\.)', re.M)
    for path in sorted(glob.glob(osp.join(ROOT, 'tests', '*.py'))):
        rel = osp.relpath(path, ROOT)
        with open(path) as f:
            if pattern.search(f.read()):
                assert rel in tests or rel in rm.UNMAPPED_TESTS, f'{name}: {rel} imports the group, unmapped'


def test_exit_codes_go_to_their_counts():
    assert rm.bucket_of(1) == rm.KILLED
    assert rm.bucket_of(0) == rm.SURVIVED
    assert rm.bucket_of(33) == rm.NO_TESTS
    assert rm.bucket_of(36) == rm.TIMEOUT and rm.bucket_of(-24) == rm.TIMEOUT
    assert rm.bucket_of(None) == rm.NOT_CHECKED
    assert rm.bucket_of(-11) == rm.INCOMPETENT and rm.bucket_of(35) == rm.INCOMPETENT


def test_mutant_names_give_module_class_and_function():
    assert rm.function_of('pkg.mod.x_check__mutmut_12') == ('pkg.mod', None, 'check')
    assert rm.function_of('pkg.mod.x__private__mutmut_1') == ('pkg.mod', None, '_private')
    assert rm.function_of('pkg.mod.xǁMetricǁprocess__mutmut_3') == ('pkg.mod', 'Metric', 'process')
    with pytest.raises(ValueError, match='not a mutmut mutant name'):
        rm.function_of('pkg.mod.check__mutmut_1')


SOURCE = '''import os


def limited(items):
    """Docstring."""
    # a comment
    if len(items) <= 3:
        return items
    return items[:3]


class Metric:
    def process(self, x):
        if len(x) <= 3:
            return x
        return x[:3]
'''
# mutmut's diffs are relative to the function, whose ``def`` line is line 1 of the hunk.
DIFF_FUNCTION = '''--- m.py
+++ m.py
@@ -3,3 +3,3 @@
     # a comment
-    if len(items) <= 3:
+    if len(items) < 3:
         return items'''
DIFF_METHOD = '''--- m.py
+++ m.py
@@ -1,3 +1,3 @@
 def process(self, x):
-    if len(x) <= 3:
+    if len(x) < 3:
         return x'''
DIFF_TEXT = '''--- m.py
+++ m.py
@@ -1,2 +1,2 @@
 def f():
-    return f'{a} was {b!r}: ' 'expected unique ids')
+    return f'{a} was {b!r}: ' 'XXexpected unique idsXX')'''
DIFF_FIELD = '''--- m.py
+++ m.py
@@ -1,2 +1,2 @@
 def f():
-    bad.append(f'{cat.get("name")!r}; ' 'x')
+    bad.append(f'{cat.get("XXnameXX")!r}; ' 'x')'''


def test_diffs_give_the_changed_line_of_the_file():
    # limited() starts at line 4; its 'if' is line 4 of the function, line 7 of the file
    assert rm.parse_diff(DIFF_FUNCTION) == (4, ['    if len(items) <= 3:'], ['    if len(items) < 3:'])
    assert rm.locate(SOURCE, 'm.x_limited__mutmut_1', DIFF_FUNCTION) == 7
    # Metric.process starts at line 13; the same text at line 7 is outside its span
    assert rm.locate(SOURCE, 'm.xǁMetricǁprocess__mutmut_1', DIFF_METHOD) == 14
    assert rm.describe(DIFF_METHOD) == 'if len(x) <= 3: -> if len(x) < 3:'


def test_string_contents_only_mutants_are_told_apart():
    assert rm.text_only(DIFF_TEXT)
    assert not rm.text_only(DIFF_FUNCTION)
    assert not rm.text_only(DIFF_FIELD)  # a changed dictionary key inside an f-string field is code


def test_summary_counts_per_file_and_score():
    meta = {'m.py': {'exit_code_by_key': {'m.x_limited__mutmut_1': 0, 'm.x_limited__mutmut_2': 1,
                                          'm.x_limited__mutmut_3': 1, 'm.x_limited__mutmut_4': 36,
                                          'm.x_limited__mutmut_5': 33, 'm.x_limited__mutmut_6': None}},
            'n.py': {'exit_code_by_key': {'n.x_f__mutmut_1': 1}}}
    summary = rm.summarize(meta, {'m.x_limited__mutmut_1': DIFF_FUNCTION}, {'m.py': SOURCE}, ['tools/t.py'])
    m = summary['per_file']['m.py']
    assert (m['total'], m[rm.KILLED], m[rm.SURVIVED], m[rm.TIMEOUT], m[rm.NO_TESTS], m[rm.NOT_CHECKED]) == \
        (6, 2, 1, 1, 1, 1)
    # (2 killed + 1 timeout) / (3 + 1 survived + 1 without tests); the unchecked one is left out
    assert m['score'] == 60.0
    assert summary['total']['total'] == 7 and summary['total'][rm.KILLED] == 3
    assert summary['total']['score'] == round(100 * 4 / 6, 1)
    survivors = {s['mutant']: s for s in summary['survivors']}
    assert set(survivors) == {'m.x_limited__mutmut_1', 'm.x_limited__mutmut_5'}
    assert survivors['m.x_limited__mutmut_1']['line'] == 7
    assert survivors['m.x_limited__mutmut_5']['line'] is None  # no diff read
    assert [t['mutant'] for t in summary['timeouts']] == ['m.x_limited__mutmut_4']  # caught, but listed
    summary.update(group='g', date='2026-12-07', tool='mutmut', tool_version='3.8.1', command='cmd', tests=['t'],
                   timeout_constant=5.0, timeout_multiplier=3.0, wall_s=1)
    text = rm.markdown(summary)
    assert '`m.py:7` survived: `if len(items) <= 3: -> if len(items) < 3:`' in text
    assert '| **all** | 7 | 3 | 1 | 1 | 1 | 0 | 0 | 1 | 66.7 |' in text
    assert 'tools/t.py' in text
    assert '## Timeouts (1; counted as caught)' in text


def test_resuming_with_other_limits_rewrites_them(tmp_path):
    path = tmp_path / 'pyproject.toml'
    path.write_text('[project]\nname = "x"\n' + rm.mutmut_config(['a.py'], ['t.py'], [], 3, 5))
    rm._set_timeouts(str(path), 10, 20)
    text = path.read_text()
    assert 'timeout_multiplier = 10.0\n' in text and 'timeout_constant = 20.0\n' in text
    assert 'timeout_multiplier = 3.0' not in text and 'name = "x"' in text


def test_mutmut_configuration_is_toml_with_the_lists():
    tomllib = pytest.importorskip('tomllib')
    text = rm.mutmut_config(['mmdet_asl/compat.py'], ['tests/a.py', 'tests/b.py'], ['configs', 'tools'], 3, 5,
                            ['tests/a.py::test_source_text'])
    table = tomllib.loads(text)['tool']['mutmut']
    assert table['source_paths'] == ['mmdet_asl']
    assert table['only_mutate'] == ['mmdet_asl/compat.py']
    assert table['pytest_add_cli_args_test_selection'] == ['tests/a.py', 'tests/b.py']
    assert table['also_copy'] == ['configs', 'tools']
    assert (table['timeout_multiplier'], table['timeout_constant']) == (3.0, 5.0)
    assert table['use_git_change_detection'] is False
    assert table['pytest_add_cli_args'] == ['-p', 'no:cacheprovider', '-q', '--deselect',
                                           'tests/a.py::test_source_text']


@pytest.mark.parametrize('name', sorted(rm.GROUPS))
def test_deselected_tests_belong_to_the_group(name):
    group = rm.GROUPS[name]
    for test in group.deselect:
        path, _, function = test.partition('::')
        assert path in group.tests, test
        with open(osp.join(ROOT, path)) as f:
            assert f'def {function}(' in f.read(), test


def test_group_environment_reaches_mutmut(tmp_path, monkeypatch):
    """The loss groups run impl='compiled' as the eager kernel (no torch.compile per mutant); the group's
    variables are added to the caller's environment, one OpenMP thread kept."""
    assert ('MMDET_ASL_COMPILE', '0') in rm.GROUPS['ops'].env and ('MMDET_ASL_COMPILE', '0') in rm.GROUPS['engine'].env
    seen = {}

    class Finished:
        pid = 0

        def __init__(self, cmd, env, **kwargs):
            seen.update(cmd=cmd, env=env)

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(rm.subprocess, 'Popen', Finished)
    monkeypatch.setenv('MMDET_ASL_COMPILE', '1')
    monkeypatch.setenv('KEPT_BY_THE_RUN', 'yes')
    assert rm.run_mutmut(str(tmp_path), ['x*'], 2, 1.0, str(tmp_path / 'log'), rm.GROUPS['ops'].env) == 0
    assert seen['env']['MMDET_ASL_COMPILE'] == '0' and seen['env']['KEPT_BY_THE_RUN'] == 'yes'
    assert seen['env']['OMP_NUM_THREADS'] == '1' and seen['cmd'][-1] == 'x*'
    rm.run_mutmut(str(tmp_path), [], 2, 1.0, str(tmp_path / 'log'))
    assert seen['env']['MMDET_ASL_COMPILE'] == '1'


def test_scripts_outside_the_package_are_not_mutated():
    assert rm.mutatable('mmdet_asl/compat.py')
    assert not rm.mutatable('tools/model_converters/efficientnet_lite_to_mmdet.py')


def test_arguments_are_checked(capsys):
    with pytest.raises(SystemExit):
        rm.parse_args(['preflight'])
    assert 'a group and --out are required' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        rm.parse_args(['preflight', '--out', 'x', '--max-children', '0'])
    assert '--max-children must be >= 1, got 0' in capsys.readouterr().err
    assert rm.parse_args(['--list']).list

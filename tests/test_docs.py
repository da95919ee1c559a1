"""The documentation names only things that exist.

README.md, docs/*.md and the config folders' README.md files are scanned for repository paths (in backticks,
code blocks and markdown links) and for ``python tools/...`` / ``python demo/...`` / ``python -m mmdet_asl...``
commands. Every path must exist (globs and ``{a,b}`` alternatives must match), and every script named in a
command must answer ``--help`` with argparse's usage and exit status 0. The scripts run in one subprocess that
imports the heavy stack once.
"""
import itertools
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / 'README.md', *(ROOT / 'docs').glob('*.md'), *(ROOT / 'configs').rglob('README.md')])
PREFIXES = ('configs', 'tools', 'docs', 'mmdet_asl', 'demo', 'tests', 'requirements', '.ci')
# A repository path: one of PREFIXES at the start of a word, then path characters.
PATH = re.compile(r'(?<![\w./-])((?:%s)/[\w./*{},-]*)' % '|'.join(re.escape(p) for p in PREFIXES))
COMMAND = re.compile(r'python3?\s+(?:-m\s+(mmdet_asl[\w.]*)|((?:tools|demo)/[\w/.-]+\.py))')
CODE = re.compile(r'```.*?```|`[^`\n]+`', re.S)
LINK = re.compile(r'\]\(([^)\s]+)\)')
PLACEHOLDER = re.compile(r'[<>…]|\.\.\.')


def rel(path):
    return path.relative_to(ROOT).as_posix()


def expand_braces(pattern):
    """``a_{x,y}.py`` -> ``['a_x.py', 'a_y.py']`` (several groups multiply out)."""
    parts = re.split(r'\{([^{}]*)\}', pattern)
    choices = [[p] if i % 2 == 0 else p.split(',') for i, p in enumerate(parts)]
    return [''.join(c) for c in itertools.product(*choices)]


def exists(base, pattern):
    """True when ``pattern`` (relative to ``base``; may hold globs and brace alternatives) names something."""
    for candidate in expand_braces(pattern):
        if any(ch in candidate for ch in '*?['):
            if not list(base.glob(candidate)):
                return False
        elif not (base / candidate).exists():
            return False
    return True


def referenced_paths(doc):
    """(path relative to the root or to the doc, base folder) pairs that ``doc`` names."""
    text = doc.read_text()
    refs = set()
    for span in CODE.findall(text):
        for match in PATH.findall(span):
            path = match.rstrip('.,:;')
            if path and not PLACEHOLDER.search(path):
                refs.add((path, ROOT))
    for target in LINK.findall(CODE.sub('', text)):
        target = target.split('#')[0]
        if not target or re.match(r'[a-z]+:', target):  # http:, https:, mailto:
            continue
        refs.add((target, doc.parent))
    return sorted(refs, key=lambda r: (str(r[1]), r[0]))


def referenced_commands():
    """Unique scripts and modules named as ``python tools/x.py`` / ``python -m mmdet_asl.x`` in the docs."""
    scripts, modules = set(), set()
    for doc in DOCS:
        for span in CODE.findall(doc.read_text()):
            for module, script in COMMAND.findall(span):
                if module:
                    modules.add(module)
                else:
                    scripts.add(script)
    return sorted(scripts), sorted(modules)


SCRIPTS, MODULES = referenced_commands()

RUNNER = textwrap.dedent('''
    import contextlib, io, json, os, runpy, sys, traceback
    scripts, modules = json.loads(sys.argv[1])
    results = {}
    for kind, name in [('script', s) for s in scripts] + [('module', m) for m in modules]:
        out = io.StringIO()
        saved_argv, saved_path = sys.argv[:], sys.path[:]
        sys.argv = [name, '--help']
        if kind == 'script':
            sys.path.insert(0, os.path.dirname(os.path.abspath(name)))
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                if kind == 'script':
                    runpy.run_path(name, run_name='__main__')
                else:
                    runpy.run_module(name, run_name='__main__', alter_sys=True)
            status = 'returned without exiting: --help was not parsed'
        except SystemExit as exc:
            status = exc.code if exc.code is not None else 0
        except BaseException:  # any failure of the script is reported, not raised
            status = traceback.format_exc(limit=-3)
        finally:
            sys.argv, sys.path[:] = saved_argv, saved_path
        text = out.getvalue()
        shown = text if len(text) <= 2300 else text[:800] + '\\n...\\n' + text[-1500:]
        results[name] = [status, 'usage:' in text, shown]
    sys.__stdout__.write('\\nRESULTS ' + json.dumps(results) + '\\n')
''')


@pytest.fixture(scope='module')
def help_results():
    existing = [s for s in SCRIPTS if (ROOT / s).is_file()]
    proc = subprocess.run([sys.executable, '-c', RUNNER, json.dumps([existing, MODULES])], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULTS ')]
    assert line, f'the --help runner crashed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    return json.loads(line[-1][len('RESULTS '):])


def test_docs_are_found():
    assert ROOT / 'README.md' in DOCS and len(DOCS) > 2
    assert SCRIPTS, 'no `python tools/...` command found in the docs'


@pytest.mark.parametrize('doc', DOCS, ids=rel)
def test_every_named_path_exists(doc):
    missing = [f'{path} (from {rel(base) if base != ROOT else "the repository root"})'
               for path, base in referenced_paths(doc) if not exists(base, path)]
    assert not missing, f'{rel(doc)} names paths that do not exist: {missing}'


@pytest.mark.parametrize('name', SCRIPTS + MODULES)
def test_named_command_answers_help(help_results, name):
    if name.endswith('.py'):
        assert (ROOT / name).is_file(), f'the docs run `python {name}`, which does not exist'
    status, printed_usage, output = help_results[name]
    assert status == 0, f'`python {name} --help` failed ({status}):\n{output}'
    assert printed_usage, f'`python {name} --help` printed no usage:\n{output}'


def test_path_scanner_sees_what_it_should(tmp_path):
    """The scanner finds backticked paths, brace alternatives, globs and relative links, and skips
    placeholders and URLs, so that the checks above can fail."""
    doc = tmp_path / 'doc.md'
    doc.write_text('`tools/train.py` and `configs/demo/x_{a,b}.py`, `configs/swap/*_asl.py`, '
                   '`tools/<name>.py`, [web](https://example.org/tools/x.py), [rel](other.md#part)\n'
                   '```bash\npython tools/nope.py --x\n```\n')
    refs = referenced_paths(doc)
    assert ('tools/train.py', ROOT) in refs and ('configs/demo/x_{a,b}.py', ROOT) in refs
    assert ('configs/swap/*_asl.py', ROOT) in refs and ('other.md', tmp_path) in refs
    assert ('tools/nope.py', ROOT) in refs
    assert not any('<' in p or 'example.org' in p for p, _ in refs)
    assert exists(ROOT, 'tools/train.py') and exists(ROOT, 'configs/swap/*_asl.py')
    assert not exists(ROOT, 'tools/nope.py') and not exists(ROOT, 'configs/swap/*_nothing.py')
    assert expand_braces('a_{x,y}_{1,2}') == ['a_x_1', 'a_x_2', 'a_y_1', 'a_y_2']
    assert COMMAND.findall('MMDET_ASL_COMPILE=0 python tools/benchmark_loss.py --x; python -m mmdet_asl.env') == [
        ('', 'tools/benchmark_loss.py'), ('mmdet_asl.env', '')]


def readme_block_after(heading: str) -> str:
    """The first ```python block of README.md after ``heading``."""
    text = (ROOT / 'README.md').read_text()
    return text[text.index(heading):].split('```python\n', 1)[1].split('```', 1)[0]


def test_readme_mmpretrain_snippet_works_pasted_into_an_mmpretrain_config(tmp_path):
    """README's snippet appended to one of MMPretrain's own multi-label configs (CSRA on VOC), read and built
    in a fresh process that never imports the plugin itself: the snippet's custom_imports must register the
    loss, and the head must compute it on a multi-label batch."""
    snippet = readme_block_after('## Multi-label classification with MMPretrain')
    config = tmp_path / 'user_config.py'
    config.write_text("_base_ = 'mmpretrain::csra/resnet101-csra_1xb16_voc07-448px.py'\n" + snippet)
    code = f"""
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
cfg = Config.fromfile({str(config)!r})
init_default_scope(cfg.default_scope)
cfg.model.backbone.init_cfg = None
model = MODELS.build(cfg.model)
feats = (torch.randn(2, 2048, 4, 4),)
samples = [DataSample().set_gt_label([1, 3]).set_gt_score(torch.zeros(20).index_fill_(0, torch.tensor([1, 3]), 1.0)),
           DataSample().set_gt_label([0]).set_gt_score(torch.zeros(20).index_fill_(0, torch.tensor([0]), 1.0))]
losses = model.head.loss(feats, samples)
print(type(model.head.loss_module).__name__, float(losses['loss']))
"""
    out = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    name, value = out.stdout.split()[-2:]
    assert name == 'AsymmetricLoss' and float(value) > 0


def test_readme_detection_snippet_builds_the_swapped_model(tmp_path):
    """README's detection snippet, saved as a config file and read as MMDetection's tools read it, gives an
    FCOS whose classification loss is AsymmetricLoss with the snippet's settings."""
    config = tmp_path / 'user_config.py'
    config.write_text(readme_block_after('## ASL in your own MMDetection config'))
    code = f"""
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmdet.registry import MODELS
cfg = Config.fromfile({str(config)!r})
init_default_scope('mmdet')
cfg.model.backbone.init_cfg = None
loss = MODELS.build(cfg.model).bbox_head.loss_cls
print(type(loss).__name__, loss.gamma_pos, float(loss.gamma_neg), float(loss.clip))
"""
    out = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[-4:] == ['AsymmetricLoss', '1.0', '2.0', '0.0']

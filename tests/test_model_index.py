"""model-index.yml and the configs/**/metafile.yml files agree with the config files on disk.

Every config folder (a folder under configs/ holding ``*.py`` files, ``_base_`` excluded) has a README.md and a
metafile.yml in OpenMMLab's format; every config file is listed in its folder's metafile and named in its README,
and every metafile entry points at an existing config. A ``*.py`` directly in configs/ is a short alias of a
listed config (one ``_base_`` line): MMEngine's ``mmdet_asl::folder/file.py`` paths need a folder, so every real
config lives in one.
"""
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / 'configs'
CONFIG_FOLDERS = sorted({p.parent for p in CONFIGS.rglob('*.py')
                         if '_base_' not in p.relative_to(CONFIGS).parts and p.parent != CONFIGS})
ALIASES = sorted(CONFIGS.glob('*.py'))
MODEL_KEYS = ('Name', 'In Collection', 'Config', 'Metadata')


def rel(path):
    return path.relative_to(ROOT).as_posix()


def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def test_model_index_imports_every_metafile():
    imports = load_yaml(ROOT / 'model-index.yml')['Import']
    assert len(imports) == len(set(imports)), imports
    missing = [p for p in imports if not (ROOT / p).is_file()]
    assert not missing, f'model-index.yml imports files that do not exist: {missing}'
    on_disk = {rel(p) for p in CONFIGS.rglob('metafile.yml')}
    assert set(imports) == on_disk, f'metafiles not imported: {sorted(on_disk - set(imports))}'


def test_there_are_config_folders():
    assert CONFIGS / 'fcos' in CONFIG_FOLDERS and CONFIGS / 'swap' in CONFIG_FOLDERS, CONFIG_FOLDERS


@pytest.mark.parametrize('folder', CONFIG_FOLDERS, ids=lambda p: rel(p))
def test_metafile_lists_exactly_the_folders_configs(folder):
    metafile = folder / 'metafile.yml'
    assert metafile.is_file(), f'{rel(folder)} has configs but no metafile.yml'
    doc = load_yaml(metafile)
    listed = [m['Config'] for m in doc['Models']]
    assert len(listed) == len(set(listed)), f'{rel(metafile)} lists a config twice'
    configs = {rel(p) for p in folder.glob('*.py')}
    assert not configs - set(listed), f'{rel(metafile)} does not list {sorted(configs - set(listed))}'
    assert not set(listed) - configs, f'{rel(metafile)} lists missing configs {sorted(set(listed) - configs)}'


@pytest.mark.parametrize('alias', ALIASES, ids=lambda p: rel(p))
def test_top_level_configs_are_aliases_of_listed_configs(alias):
    listed = {m['Config'] for p in CONFIGS.rglob('metafile.yml') for m in load_yaml(p)['Models']}
    code = [line for line in alias.read_text().splitlines() if line.strip() and not line.startswith('#')]
    match = re.fullmatch(r"_base_ = '\./([\w-]+/[\w.-]+\.py)'", code[0]) if len(code) == 1 else None
    assert match, f'{rel(alias)} must be one line `_base_ = \'./<folder>/<config>.py\'`, got {code}'
    target = f'configs/{match.group(1)}'
    assert target in listed and target.endswith('/' + alias.name), (rel(alias), target)


@pytest.mark.parametrize('folder', CONFIG_FOLDERS, ids=lambda p: rel(p))
def test_readme_names_every_config(folder):
    readme = folder / 'README.md'
    assert readme.is_file(), f'{rel(folder)} has configs but no README.md'
    text = readme.read_text()
    unnamed = sorted(p.name for p in folder.glob('*.py') if p.name not in text)
    assert not unnamed, f'{rel(readme)} does not name {unnamed}'


@pytest.mark.parametrize('metafile', sorted(CONFIGS.rglob('metafile.yml')), ids=lambda p: rel(p))
def test_metafile_format(metafile):
    """OpenMMLab's fields: Collections with Name and README; Models with Name, In Collection, Config,
    Metadata and, where present, Results with Task, Dataset and numeric Metrics."""
    doc = load_yaml(metafile)
    collections = {c['Name']: c for c in doc['Collections']}
    for collection in collections.values():
        assert (ROOT / collection['README']).is_file(), collection['README']
        assert collection['Paper']['URL'] and collection['Paper']['Title']
    for model in doc['Models']:
        for key in MODEL_KEYS:
            assert model.get(key), f'{rel(metafile)}: {model.get("Name")} has no {key}'
        assert model['In Collection'] in collections, model
        assert model['Name'] == Path(model['Config']).stem, model
        for result in model.get('Results', []):
            assert result['Task'] and result['Dataset'], model['Name']
            assert result['Metrics'] and all(isinstance(v, (int, float)) for v in result['Metrics'].values())


def test_model_names_are_unique():
    names = [m['Name'] for p in CONFIGS.rglob('metafile.yml') for m in load_yaml(p)['Models']]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)

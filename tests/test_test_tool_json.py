"""tools/test.py's result file: strict JSON (an undefined metric is null, never -1 or NaN), a refusal when the
evaluator returns no metric at all, and output paths checked before the model is built."""
import importlib.util
import json
import math
import os.path as osp

import pytest

from mmdet_asl.utils.strict_json import dump_json, dumps_json, strict

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_test_tool():
    spec = importlib.util.spec_from_file_location('mmdet_asl_tools_test', osp.join(ROOT, 'tools', 'test.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def strict_load(path):
    """json.load that fails on NaN / Infinity tokens, as jq and JSON.parse do."""
    def refuse(token):
        raise ValueError(f'non-standard JSON token {token}')
    with open(path) as f:
        return json.load(f, parse_constant=refuse)


def test_strict_replaces_every_non_finite_number_in_nested_values():
    import numpy as np
    import torch
    value = {'a': float('nan'), 'b': [1.0, float('inf'), (-float('inf'), 2)], 'c': np.float32('nan'),
             'd': torch.tensor([0.5, float('nan')]), 'e': 'NaN', 'f': 3}
    assert strict(value) == {'a': None, 'b': [1.0, None, [None, 2]], 'c': None, 'd': [0.5, None], 'e': 'NaN',
                             'f': 3}
    assert json.loads(dumps_json(value))['d'] == [0.5, None]


def test_detection_record_writes_null_for_cocometric_sentinels(tmp_path):
    tool = load_test_tool()
    metrics = {'coco/bbox_mAP': 0.25, 'coco/bbox_mAP_50': 0.5, 'coco/bbox_mAP_75': 0.125, 'coco/bbox_mAP_s': 0.1,
               'coco/bbox_mAP_m': 0.3, 'coco/bbox_mAP_l': -1.0, 'coco/bbox_mAP_copypaste': 'x'}
    table, record = tool.metrics_record(metrics)
    path = tmp_path / 'metrics.json'
    dump_json(record, str(path))
    saved = strict_load(path)
    assert saved['AP'] == 25.0 and saved['APl'] is None
    assert saved['raw']['coco/bbox_mAP_l'] is None and saved['raw']['coco/bbox_mAP'] == 0.25
    assert 'coco/bbox_mAP_copypaste' not in saved['raw']


def test_multilabel_record_writes_null_for_nan(tmp_path):
    tool = load_test_tool()
    metrics = {'multi-label/mAP': 50.0, 'multi-label/CP': float('nan'), 'multi-label/CR': 40.0,
               'multi-label/mAP_top3': 50.0, 'multi-label/CP_top3': 10.0}
    table, record = tool.metrics_record(metrics)
    path = tmp_path / 'metrics.json'
    dump_json(record, str(path))
    saved = strict_load(path)
    assert saved['mAP'] == 50.0 and saved['CP'] is None and saved['CP_top3'] == 10.0
    assert saved['raw']['multi-label/CP'] is None
    # a legitimately negative number outside CocoMetric's keys is kept
    assert tool.metrics_record({'loss_delta': -0.5})[1]['raw']['loss_delta'] == -0.5
    thr_row = tool.format_multilabel_table(tool.multilabel_metrics(metrics)).splitlines()[2]
    cells = [c.strip() for c in thr_row.strip('| ').split('|')]
    assert cells[:5] == ['thr', '50.00', '', '', '40.00'], cells  # mAP_micro missing, CP NaN: blank


def test_no_defined_metric_is_an_error_not_an_empty_file():
    tool = load_test_tool()
    _, empty = tool.metrics_record({})
    with pytest.raises(RuntimeError, match='no metric value for ckpt.pth.*m.json was not written'):
        tool.check_some_defined(empty, 'cfg.py', 'ckpt.pth', 'm.json')
    _, all_undefined = tool.metrics_record({'coco/bbox_mAP': -1.0, 'multi-label/mAP': float('nan')})
    with pytest.raises(RuntimeError, match='no metric value'):
        tool.check_some_defined(all_undefined, 'cfg.py', 'ckpt.pth')
    _, one = tool.metrics_record({'coco/bbox_mAP': 0.0})
    tool.check_some_defined(one, 'cfg.py', 'ckpt.pth')  # AP 0 is a result


@pytest.mark.parametrize('option,value,message', [
    ('--json', '{tmp}', 'is a folder'),
    ('--json', '{tmp}/file.txt/metrics.json', 'cannot create its folder'),
    ('--out', '{tmp}/preds.json', 'must end with .pkl or .pickle'),
    ('--out', '{tmp}', 'must end with'),
])
def test_output_paths_are_checked_before_the_config_is_read(tmp_path, option, value, message):
    (tmp_path / 'file.txt').write_text('a file, not a folder')
    tool = load_test_tool()
    missing_config = str(tmp_path / 'no_such_config.py')  # reading it would raise FileNotFoundError
    with pytest.raises(ValueError, match=f'{option} .*{message}'):
        tool.main([missing_config, 'ckpt.pth', option, value.format(tmp=tmp_path)])


def test_defined_treats_only_cocometric_negatives_as_sentinels():
    tool = load_test_tool()
    assert tool.defined(-1.0, 'coco/bbox_mAP_s') is None and tool.defined(-1.0, 'bbox_mAP') is None
    assert tool.defined(-1.0, 'multi-label/CF1') == -1.0
    assert tool.defined(None) is None and tool.defined(float('inf')) is None
    assert math.isclose(tool.defined(0.5, 'coco/bbox_mAP'), 0.5)


def test_result_files_round_trip_undefined_numbers_as_nan(tmp_path):
    from mmdet_asl.utils.strict_json import load_json
    path = str(tmp_path / 'result.json')
    dump_json({'mAP': float('nan'), 'runs': [{'metric': 1.5, 'std': float('nan')}], 'name': 'asl'}, path)
    strict_load(path)  # no NaN token on disk
    back = load_json(path)
    assert math.isnan(back['mAP']) and math.isnan(back['runs'][0]['std'])
    assert back['runs'][0]['metric'] == 1.5 and back['name'] == 'asl'


def test_experiment_tools_write_results_through_strict_json():
    """Every result file the experiment tools and tools/test.py write goes through dump_json (a plain
    json.dump would write NaN tokens for an undefined mean or the std of one seed)."""
    import glob
    import re
    offenders = []
    for path in sorted(glob.glob(osp.join(ROOT, 'tools', 'analysis_tools', '*.py')) + [
            osp.join(ROOT, 'tools', 'test.py')]):
        text = open(path).read()
        if re.search(r'\bjson\.dumps?\(', text):
            offenders.append(osp.relpath(path, ROOT))
    assert not offenders, f'plain json.dump(s) in {offenders}: use mmdet_asl.utils.strict_json'

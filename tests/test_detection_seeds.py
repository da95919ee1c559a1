"""The configs the experiment tools write: the given config plus their probe, its other hooks kept."""
import os.path as osp

from mmengine.config import Config

from test_detection_e2e import ROOT, load_tool

CONFIG = osp.join(ROOT, 'configs', 'demo', 'fcos_effnet-lite0_asl_deepforest.py')


def test_detection_seeds_keeps_the_config_hooks_beside_its_probe(tmp_path):
    """detection_seeds.py adds ProbabilityGapHook to the demo config without dropping the config's own hooks."""
    seeds = load_tool('analysis_tools/detection_seeds')
    path = seeds.write_probed_config(CONFIG, str(tmp_path / 'probed.py'))
    assert [h['type'] for h in Config.fromfile(path).custom_hooks] == ['ChannelsLastHook', 'ProbabilityGapHook']


def test_custom_hooks_with_replaces_its_type_and_keeps_the_rest(tmp_path):
    """The experiment tools' hook helper: a hook of the same type is replaced in place, others are kept."""
    from mmdet_asl.utils.configs import custom_hooks_with
    base = tmp_path / 'base.py'
    base.write_text("custom_hooks = [dict(type='ChannelsLastHook'), dict(type='ProbabilityGapHook', "
                    "adaptive=dict(target=0.1)), dict(type='EMAHook', momentum=0.01)]\n")
    hooks = custom_hooks_with(str(base), dict(type='ProbabilityGapHook', per_class_interval=5))
    assert hooks == [dict(type='ChannelsLastHook'), dict(type='ProbabilityGapHook', per_class_interval=5),
                     dict(type='EMAHook', momentum=0.01)]
    assert custom_hooks_with(str(base), dict(type='CheckInvalidLossHook'))[-1] == dict(type='CheckInvalidLossHook')
    base.write_text('x = 1\n')
    assert custom_hooks_with(str(base), dict(type='ProbabilityGapHook')) == [dict(type='ProbabilityGapHook')]


def test_write_config_with_hook_inherits_keeps_hooks_and_appends_lines(tmp_path):
    """The run configs of the experiment tools: the base's other hooks survive, the extra lines apply."""
    from mmdet_asl.utils.configs import write_config_with_hook
    base = tmp_path / 'base.py'
    base.write_text("x = 1\ncustom_hooks = [dict(type='EMAHook')]\n")
    cfg = Config.fromfile(write_config_with_hook(str(tmp_path / 'a.py'), str(base), dict(type='ProbabilityGapHook'),
                                                 ['x = 2']))
    assert cfg.x == 2 and [h['type'] for h in cfg.custom_hooks] == ['EMAHook', 'ProbabilityGapHook']
    cfg = Config.fromfile(write_config_with_hook(str(tmp_path / 'b.py'), str(base)))
    assert cfg.x == 1 and cfg.custom_hooks == [dict(type='EMAHook')]


def test_longtail_experiment_swaps_the_config_probe_for_its_own(tmp_path):
    """experiment_longtail.py replaces the config's adaptive ProbabilityGapHook by the method's hook."""
    longtail = load_tool('analysis_tools/experiment_longtail')
    path = str(tmp_path / 'focal.py')
    longtail.write_config(path, dict(gamma_pos=2.0, gamma_neg=2.0, clip=0.0), None, str(tmp_path / 'd.pkl'), 10)
    hooks = Config.fromfile(path).custom_hooks
    assert [h['type'] for h in hooks] == ['ProbabilityGapHook'] and 'adaptive' not in hooks[0]

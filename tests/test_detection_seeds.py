"""tools/analysis_tools/detection_seeds.py: the probed config it trains is the given config plus the probe."""
import os.path as osp

from mmengine.config import Config

from test_detection_e2e import ROOT, load_tool

CONFIG = osp.join(ROOT, 'configs', 'demo', 'fcos_effnet-lite0_asl_deepforest.py')


def test_detection_seeds_keeps_the_config_hooks_beside_its_probe(tmp_path):
    """detection_seeds.py adds ProbabilityGapHook to the demo config without dropping the config's own hooks."""
    seeds = load_tool('analysis_tools/detection_seeds')
    path = seeds.write_probed_config(CONFIG, str(tmp_path / 'probed.py'))
    assert [h['type'] for h in Config.fromfile(path).custom_hooks] == ['ChannelsLastHook', 'ProbabilityGapHook']

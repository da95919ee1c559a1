"""What MMDetection's backbones share: ``frozen_stages``, ``norm_eval`` and a local ``Pretrained`` file."""
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm


class FrozenStagesBackbone(BaseModule):
    """Base of our backbones: subclasses list their frozen modules and load their own checkpoint layout.

    Subclasses set ``frozen_stages`` and ``norm_eval`` and implement ``_frozen_modules()`` (the modules that
    ``frozen_stages`` freezes) and ``load_pretrained(filename, prefix)`` (called for
    ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=...)``).
    """

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def init_weights(self) -> None:
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            self.load_pretrained(cfg['checkpoint'], prefix=cfg.get('prefix'))
            self._is_init = True
            return
        super().init_weights()

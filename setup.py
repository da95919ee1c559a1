"""Build hook (the metadata lives in pyproject.toml): ship configs/, tools/ and model-index.yml inside the
package as ``mmdet_asl/.mim/``, OpenMMLab's layout, which ``mim`` and ``mmdet_asl::`` config paths read.

A wheel (``pip install .``) gets copies; an editable install (``pip install -e .``) gets symlinks in the
checkout (``mmdet_asl/.mim``, git-ignored), so edits to the configs take effect without reinstalling.
"""
import os
import os.path as osp
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))
MIM_ITEMS = ('configs', 'tools', 'model-index.yml')


def add_mim_extension(mim_dir: str, link: bool) -> None:
    """Put each of MIM_ITEMS present in the checkout under ``mim_dir``, as a symlink or a copy."""
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_ITEMS:
        src, dst = osp.join(HERE, name), osp.join(mim_dir, name)
        if not osp.exists(src):
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if link:
            os.symlink(osp.relpath(src, mim_dir), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            shutil.copyfile(src, dst)


class BuildPyWithMim(build_py):
    """``build_py`` that adds ``mmdet_asl/.mim`` to the build (copies) or to the checkout (editable: links)."""

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            add_mim_extension(osp.join(HERE, 'mmdet_asl', '.mim'), link=True)
        else:
            add_mim_extension(osp.join(self.build_lib, 'mmdet_asl', '.mim'), link=False)


setup(cmdclass={'build_py': BuildPyWithMim})

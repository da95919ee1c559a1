"""Torch-only operators of the plugin (importable without OpenMMLab)."""

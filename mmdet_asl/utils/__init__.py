"""Helpers for the entry points in tools/."""
from .preflight import MissingFilesError, check_config_files, missing_config_files

__all__ = ['MissingFilesError', 'check_config_files', 'missing_config_files']

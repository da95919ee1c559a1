"""Helpers for the entry points in tools/."""
from .preflight import (
                        MalformedFilesError,
                        MissingFilesError,
                        check_config_files,
                        malformed_config_files,
                        missing_config_files,
)

__all__ = ['MalformedFilesError', 'MissingFilesError', 'check_config_files', 'malformed_config_files',
           'missing_config_files']

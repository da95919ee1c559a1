"""Print README's support table: each MMDetection 3.3 family, its classification loss, what to use with ASL, and
the outcome that ``tests/test_support_matrix.py`` checks (its ``SUPPORT`` dict is the one source of the table).

    python tools/misc/support_matrix.py
"""
import argparse
import importlib.util
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split('\n\n')[0]).parse_args()
    path = osp.join(ROOT, 'tests', 'test_support_matrix.py')
    spec = importlib.util.spec_from_file_location('test_support_matrix', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.stdout.write(module.support_table() + '\n')


if __name__ == '__main__':
    main()

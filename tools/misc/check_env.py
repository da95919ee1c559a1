#!/usr/bin/env python
"""Environment check that works even when the stack is broken: runs ``mmdet_asl/env.py`` by path, so a
failing ``import mmdet_asl`` (e.g. mmcv without its compiled ops) is reported instead of crashing first.
In a working environment ``python -m mmdet_asl.env`` does the same."""
import os.path as osp
import runpy

if __name__ == '__main__':
    runpy.run_path(osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'mmdet_asl', 'env.py'),
                   run_name='__main__')

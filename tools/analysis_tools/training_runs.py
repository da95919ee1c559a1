"""What the grid tools share (``longtail_detection.py``, ``asl_grid.py``): one ``tools/train.py`` run per
(setting, seed) in a subprocess, several at a time with one share of the cores each, each finished run a row of
a resumable ``results.json``."""
import hashlib
import json
import os
import os.path as osp
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from mmdet_asl.utils.strict_json import dump_json, dumps_json  # noqa: E402


def thread_env(jobs):
    """The runs' environment: the eager loss (no compile time per run) and cpu_count // jobs threads each,
    unless the caller's environment sets them. MKL gets OMP's count when only that one is set: more MKL threads
    than a run's share of the cores spin against the other runs."""
    env = dict(os.environ)
    env.setdefault('MMDET_ASL_COMPILE', '0')
    env.setdefault('OMP_NUM_THREADS', str(max(1, (os.cpu_count() or 1) // jobs)))
    env.setdefault('MKL_NUM_THREADS', env['OMP_NUM_THREADS'])
    return env


def read_scalars(work_dir):
    """The lines of every ``scalars.json`` under a run's folder, log folders in time order."""
    lines = []
    for root, _, files in sorted(os.walk(work_dir)):
        if 'scalars.json' in files:
            with open(osp.join(root, 'scalars.json')) as f:
                lines += [json.loads(line) for line in f if line.strip()]
    return lines


def file_sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def train(config, work_dir, options, log_path, env):
    """Run ``tools/train.py config`` into ``work_dir`` with ``--cfg-options options``, output to ``log_path``.

    Returns:
        dict: ``train_s``, ``config_sha256`` (of the full config MMEngine dumps as ``<work_dir>/<config's
        file name>``: it identifies the run's settings), the load average before and after, and the threads.
    """
    load_before = os.getloadavg()
    t0 = time.time()
    with open(log_path, 'w') as log:
        subprocess.check_call([sys.executable, 'tools/train.py', config, '--work-dir', work_dir, '--cfg-options',
                               *options], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    return dict(train_s=round(time.time() - t0, 1),
                config_sha256=file_sha256(osp.join(work_dir, osp.basename(config))),
                load_before=list(load_before), load_after=list(os.getloadavg()),
                threads=env.get('OMP_NUM_THREADS', ''))


def _job_name(job):
    """A job's plain values (cell, loss, seed; not the shared arguments and environment) for a message."""
    return tuple(x for x in job if isinstance(x, (str, int, float)))


def run_all(run_one, todo, jobs, results, res_file, not_printed=()):
    """Call ``run_one(*job)`` for each job of ``todo``, ``jobs`` at a time; append each row to ``results`` and
    write ``res_file`` after every run, so that an interrupted grid resumes from it. A failed run does not stop
    the others or lose their rows; the failures are raised together at the end."""
    failed = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(run_one, *job): job for job in todo}
        for done in as_completed(futures):
            try:
                row = done.result()
            except Exception as e:
                failed.append((futures[done], e))
                print(f'run {_job_name(futures[done])} failed: {e!r}', flush=True)
                continue
            results.append(row)
            dump_json(results, res_file, indent=1)
            print(dumps_json({k: v for k, v in row.items() if k not in not_printed}), flush=True)
    if failed:
        raise RuntimeError(f'{len(failed)} of {len(todo)} runs failed ('
                           + '; '.join(f'{_job_name(job)}: {e!r}' for job, e in failed)
                           + f'); the finished runs are in {res_file}') from failed[0][1]
    return results

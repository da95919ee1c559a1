"""Environment check: ``python -m mmdet_asl.env``.

Prints the versions of the stack and which of mmcv's compiled ops exist: the CPU ops (run here on a tiny
input) and the CUDA ops (present only when mmcv was built with CUDA). Exits non-zero with a message that says
what to do when the ops a run needs are missing: no compiled ops, ops built against another torch, or a CUDA
device with an mmcv built without CUDA. MMPretrain is optional (classification only).
"""
import argparse
import importlib
import importlib.metadata
import sys

PACKAGES = ('torch', 'torchvision', 'mmengine', 'mmcv', 'mmdet', 'mmpretrain', 'timm', 'pycocotools',
            'mmdet_asl')
OPTIONAL = {'mmpretrain': 'optional, for classification: pip install "mmdet-asl[multilabel]"'}

FIX_OPS = (
    'mmcv was installed without its compiled ops, or they were built against another torch.\n'
    'Fix: reinstall mmcv against the torch in this environment:\n'
    '  pip uninstall -y mmcv\n'
    '  MMCV_WITH_OPS=1 MAX_JOBS=2 pip install --no-cache-dir --no-build-isolation mmcv==2.1.0\n'
    '(or rerun `bash tools/setup_env.sh`; --no-cache-dir stops pip reusing a wheel built for another torch).')


def package_version(name):
    """Return the version string of ``name``, or ``'missing (<error>)'``."""
    try:
        module = importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 -- any import failure is reported, not raised
        return None, f'missing ({type(exc).__name__}: {exc})'
    version = getattr(module, '__version__', None)
    if version is None:  # e.g. pycocotools has no __version__; its distribution metadata does
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = 'unknown'
    return module, version


FIX_CUDA_OPS = (
    'This mmcv has no CUDA ops (mmcv.ops.get_compiling_cuda_version() is "not available"): detection on the GPU\n'
    'needs them (NMS, RoIAlign, deformable convolution on CUDA tensors). Fix: on the GPU machine, with the CUDA\n'
    'toolkit (nvcc) matching torch.version.cuda installed, rebuild mmcv:\n'
    '  pip uninstall -y mmcv\n'
    '  FORCE_CUDA=1 MMCV_WITH_OPS=1 pip install --no-cache-dir --no-build-isolation mmcv==2.1.0\n'
    '(docs/installation.md, "MMCV 2.1.0 from source").')


def cuda_ops_status():
    """(compiled, message): whether mmcv's extension has CUDA kernels, and for which CUDA version."""
    try:
        from mmcv.ops import get_compiling_cuda_version
        version = get_compiling_cuda_version()
    except Exception as exc:  # noqa: BLE001
        return False, f'unknown ({type(exc).__name__}: {exc})'
    if not version or version == 'not available':
        return False, 'not compiled (this mmcv was built without CUDA: CPU only)'
    return True, f'compiled for CUDA {version}'


def check_mmcv_ops():
    """Run ``mmcv.ops.nms`` on a tiny tensor. Returns (ok, message)."""
    try:
        import torch
        from mmcv.ops import nms
        boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])
        scores = torch.tensor([0.9, 0.8, 0.7])
        _, keep = nms(boxes, scores, iou_threshold=0.5)
    except Exception as exc:  # noqa: BLE001
        return False, f'mmcv.ops failed: {type(exc).__name__}: {exc}\n{FIX_OPS}'
    if keep.tolist() != [0, 2]:
        return False, f'mmcv.ops.nms returned {keep.tolist()}, expected [0, 2]\n{FIX_OPS}'
    return True, 'mmcv.ops.nms runs'


def main(argv=None):
    """Print the stack's versions and check mmcv's ops; returns the exit status: 0 when all is well, 1 when a
    package or the CPU ops are missing, 2 when a CUDA device is present but mmcv has no CUDA ops."""
    argparse.ArgumentParser(
        description='Print the versions of the mmdet-asl stack and check that mmcv\'s compiled ops run; '
                    'exits non-zero, saying how to fix it, when a package is missing or the ops fail.'
    ).parse_args(argv)
    ok = True
    for name in PACKAGES:
        module, version = package_version(name)
        if module is None and name in OPTIONAL:
            version = f'not installed ({OPTIONAL[name]})'
        print(f'{name:12s} {version}')
        ok &= module is not None or name in OPTIONAL
    cuda = False
    try:
        import torch
        cuda = torch.cuda.is_available()
        print(f'{"cuda":12s} {cuda} (torch built for CUDA {torch.version.cuda})')
    except ImportError:
        pass
    ops_ok, message = check_mmcv_ops()
    print(f'{"mmcv ops":12s} {"CPU ops ok (nms runs)" if ops_ok else "FAILED"}')
    if not ops_ok:
        print(message, file=sys.stderr)
    else:
        compiled, status = cuda_ops_status()
        print(f'{"mmcv cuda":12s} {status}')
        if cuda and not compiled:
            print(FIX_CUDA_OPS, file=sys.stderr)
            if ok:
                return 2  # works on the CPU; the GPU needs another mmcv
        elif not compiled:
            print('A CPU-only mmcv trains and tests on the CPU; for a GPU see docs/installation.md '
                  '("MMCV 2.1.0 from source", FORCE_CUDA=1).')
    if not ok:
        print('Some packages are missing: run `bash tools/setup_env.sh`.', file=sys.stderr)
    return 0 if ok and ops_ok else 1


if __name__ == '__main__':
    sys.exit(main())

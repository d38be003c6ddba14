"""``tinyres.cuda``: is a GPU usable, the GPUs' random seed, and CUDA graphs (``graphs``) --
as ``torch.cuda``.  (The CuPy import itself lives in ``core.backend``.)"""
from ..core.backend import cuda_initial_seed as initial_seed  # noqa: F401
from ..core.backend import cuda_manual_seed as manual_seed  # noqa: F401
from ..core.backend import cuda_manual_seed as manual_seed_all  # noqa: F401
from ..core.backend import is_cuda_available as is_available  # noqa: F401
from .graphs import CUDAGraph, graph, make_graphed_step  # noqa: F401


def device_count():
    """How many CUDA GPUs CuPy sees (0 without CuPy)."""
    from ..core import backend
    cp = backend.cupy_module()
    if cp is None or not is_available():
        return 0
    return cp.cuda.runtime.getDeviceCount()


def empty_cache():
    """Give the GPU memory CuPy holds in its pools back to the driver (``torch.cuda.empty_cache``;
    tensors still alive keep theirs).  Nothing to do without CuPy or a GPU."""
    from ..core import backend
    cp = backend.cupy_module()
    if cp is None or not is_available():
        return
    cp.get_default_memory_pool().free_all_blocks()
    cp.get_default_pinned_memory_pool().free_all_blocks()

"""``tinyres.nn.utils.convert_parameters``: parameters as one flat vector and back, as
``torch.nn.utils.convert_parameters``."""
from ...core import ops
from ...core.tensor import Tensor
from .clip_grad import _as_list

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters):
    """One flat vector of all ``parameters``, in order (differentiable: a ``cat``)."""
    params = _as_list(parameters)
    devices = {str(p.device) for p in params}
    if len(devices) > 1:
        raise TypeError(f"Found two parameters on different devices, this is currently not supported "
                        f"(parameters on {' and '.join(sorted(devices))})")
    return ops.cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec, parameters):
    """Set ``parameters`` (in order) from the flat ``vec``: each parameter's array becomes
    a view of its slice of ``vec``, as torch's ``param.data = vec[...].view_as(param)``."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected Tensor, but got: {type(vec).__name__}")
    params = _as_list(parameters)
    needed = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.shape[0] != needed:
        raise RuntimeError(f"vector_to_parameters: expected a vector of {needed} entries for these "
                           f"parameters, got shape {vec.shape}")
    pointer = 0
    for p in params:
        n = p.numel()
        p.array = vec.array[pointer:pointer + n].reshape(p.shape)
        pointer += n

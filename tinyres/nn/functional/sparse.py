"""Lookups by integer index, as torch's "sparse functions": ``embedding`` (a table's rows)
and ``one_hot`` (indices as 0/1 vectors).

``embedding`` is advanced indexing, y = weight[input], whose gradient adds each output row's
gradient back onto the row it read (repeated indices summed, ``ops.scatter_add``); it is
linear in the weight, and its gradient is itself differentiable.
"""
import numbers

from ...core import backend
from ...core.backend import get_array_module
from ...core.ops import getitem, where
from ...core.tensor import Tensor

__all__ = ["embedding", "one_hot"]


def _check_indices(op, indices, allowed, what):
    if not isinstance(indices, Tensor):
        raise TypeError(f"{op}: expected a Tensor of indices, got {type(indices).__name__}")
    if indices.dtype not in allowed:
        raise RuntimeError(f"{op}: expected {what} indices, got {indices.dtype}")


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """The rows ``weight[input]`` (shape ``input.shape + (embedding_dim,)``), as
    ``torch.nn.functional.embedding``; ``weight`` is (num_embeddings, embedding_dim) and the
    indices int64 or int32, each in [0, num_embeddings).  The rows read at ``padding_idx``
    get no gradient (a padding token's row stays as it is).  ``max_norm``,
    ``scale_grad_by_freq`` and ``sparse`` are not implemented."""
    return checked_embedding("embedding", input, weight, padding_idx, max_norm, scale_grad_by_freq, sparse)


def checked_embedding(op, input, weight, padding_idx, max_norm=None, scale_grad_by_freq=False, sparse=False):
    """``embedding`` after checking its arguments, ``op`` naming the caller in the errors
    (``nn.Embedding`` names itself and its settings)."""
    for name, value, default in (("max_norm", max_norm, None), ("scale_grad_by_freq", scale_grad_by_freq, False),
                                 ("sparse", sparse, False)):
        if value != default:
            raise NotImplementedError(f"{op}: {name}={value!r} is not implemented (only {name}={default!r})")
    _check_indices(op, input, (backend.int64, backend.int32), "int64 (Long) or int32 (Int)")
    if not isinstance(weight, Tensor) or weight.ndim != 2:
        raise RuntimeError(f"{op}: expected a 2-D weight (num_embeddings, embedding_dim), got "
                           f"{getattr(weight, 'shape', type(weight).__name__)}")
    n = weight.shape[0]
    padding_idx = padding_index(op, padding_idx, n)
    low, high = _range(input)
    if low < 0 or high >= n:
        raise IndexError(f"{op}: index out of range in self: expected indices in [0, {n}) for a weight of "
                         f"shape {weight.shape}, got values from {low} to {high}")
    rows = getitem(weight, input)
    if padding_idx is None or not rows.requires_grad:
        return rows
    return where((input == padding_idx).unsqueeze(-1), rows.detach(), rows)    # padding: a constant, gradient 0


def _range(indices):
    """The smallest and the largest index (0, -1 when there are none), read on their device."""
    if not indices.numel():
        return 0, -1
    with backend.on_device(indices.device):
        return int(indices.array.min()), int(indices.array.max())


def padding_index(op, padding_idx, num_embeddings):
    """``padding_idx`` in [0, num_embeddings) (a negative one counts from the end), or None."""
    if padding_idx is None:
        return None
    if not isinstance(padding_idx, numbers.Integral) or not -num_embeddings <= padding_idx < num_embeddings:
        raise AssertionError(f"{op}: Padding_idx must be within num_embeddings: expected an int in "
                             f"[{-num_embeddings}, {num_embeddings - 1}], got {padding_idx!r}")
    return int(padding_idx) % num_embeddings


def one_hot(tensor, num_classes=-1):
    """(..., num_classes) int64 zeros with a 1 at each index of ``tensor`` (int64), as
    ``torch.nn.functional.one_hot``; ``num_classes=-1`` takes the largest index + 1.
    No gradient (an integer result)."""
    _check_indices("one_hot", tensor, (backend.int64,), "an int64 (LongTensor) tensor of class")
    if not isinstance(num_classes, numbers.Integral) or num_classes < -1:
        raise RuntimeError(f"one_hot: expected num_classes to be -1 or a non-negative int, got {num_classes!r}")
    low, high = _range(tensor)
    if num_classes == -1:
        if not tensor.numel():
            raise RuntimeError("one_hot: can not infer the total number of classes from an empty tensor; "
                               "pass num_classes")
        num_classes = high + 1
    if low < 0:
        raise RuntimeError(f"one_hot: class values must be non-negative, got {low}")
    if high >= num_classes:
        raise RuntimeError(f"one_hot: class values must be smaller than num_classes ({num_classes}), got {high}")
    xp = get_array_module(tensor.array)
    with backend.on_device(tensor.device):
        return Tensor((tensor.array[..., None] == xp.arange(num_classes)).astype(backend.int64))

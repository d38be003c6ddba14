"""Collation, as ``torch.utils.data``'s: a list of samples becomes one batch.

``default_collate`` keeps the structure of a sample and stacks its leaves along a new first
axis: Tensors with ``tinyres.stack``, NumPy arrays and NumPy scalars into one Tensor, Python
floats into a float64 Tensor and ints into an int64 one (torch's dtypes), strings and bytes
left as a list.  Dicts are collated key by key, named tuples field by field, other
sequences position by position (as lists).  So a dataset whose samples are
``(image, label)`` gives batches ``[images, labels]``.

``default_convert`` is what a DataLoader with ``batch_size=None`` applies to each sample:
the same walk, turning NumPy arrays into Tensors without stacking anything.
"""
import collections.abc
import numbers

import numpy as np

from ...core.ops import stack
from ...core.tensor import Tensor, tensor

_UNSUPPORTED = "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"


def _is_namedtuple(x):
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _array_to_tensor(array):
    if array.dtype.kind in "SaUO":          # strings and objects: no Tensor holds them
        raise TypeError(_UNSUPPORTED.format(array.dtype))
    return tensor(array)


def default_collate(batch):
    """One batch of the samples in ``batch`` (a list), stacked leaf by leaf (see the module)."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(list(batch), 0)
    if isinstance(elem, np.ndarray):
        return _array_to_tensor(np.stack(batch))
    if isinstance(elem, np.generic) and not isinstance(elem, (np.str_, np.bytes_)):
        return _array_to_tensor(np.asarray(batch))
    if isinstance(elem, float):
        return tensor(batch, dtype="float64")
    if isinstance(elem, bool):
        return tensor(batch, dtype="bool")
    if isinstance(elem, numbers.Integral):
        return tensor(batch, dtype="int64")
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        collated = {key: default_collate([d[key] for d in batch]) for key in elem}
        try:
            return type(elem)(collated)
        except TypeError:          # a Mapping that cannot be built from a dict
            return collated
    if _is_namedtuple(elem):
        return type(elem)(*(default_collate(field) for field in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        if any(len(sample) != len(elem) for sample in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        collated = [default_collate(position) for position in zip(*batch)]
        if isinstance(elem, tuple):
            return collated
        try:
            return type(elem)(collated)
        except TypeError:
            return collated
    raise TypeError(_UNSUPPORTED.format(type(elem)))


def default_convert(data):
    """``data`` with every NumPy array (and NumPy scalar) made a Tensor, its structure kept."""
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        return data if data.dtype.kind in "SaUO" else tensor(data)
    if isinstance(data, np.generic) and not isinstance(data, (np.str_, np.bytes_)):
        return tensor(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        converted = {key: default_convert(value) for key, value in data.items()}
        try:
            return type(data)(converted)
        except TypeError:
            return converted
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        converted = [default_convert(d) for d in data]
        try:
            return type(data)(converted)
        except TypeError:
            return converted
    return data

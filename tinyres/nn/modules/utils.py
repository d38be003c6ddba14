"""``torch.nn.modules.utils``: ``_single``, ``_pair``, ``_triple``, ``_quadruple`` and ``_ntuple``,
the helpers ported layers use to turn an int or a sequence into a tuple of n values."""
import collections.abc
import itertools


def _ntuple(n, name="parse"):
    """The function that returns a sequence as a tuple, and repeats anything else n times."""
    def parse(x):
        if isinstance(x, collections.abc.Iterable):
            return tuple(x)
        return tuple(itertools.repeat(x, n))
    parse.__name__ = name
    return parse


_single = _ntuple(1, "_single")
_pair = _ntuple(2, "_pair")
_triple = _ntuple(3, "_triple")
_quadruple = _ntuple(4, "_quadruple")

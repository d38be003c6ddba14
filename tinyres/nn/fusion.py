"""A residual block's tail as one op on a GPU: ``relu(bn(x) + shortcut)`` and ``relu(bn(x))``.

On a GPU each op is a kernel launch and a pass over memory; in a ResNet the batch norm is
followed by a ReLU (after a block's first convolution), or by the shortcut's addition and
a ReLU (after its last).  ``bn_relu`` does those two or three steps as one op,
``BatchNormReLUFunction``: one normalisation kernel with the add and the ReLU inside, and a
backward that reads ReLU's mask from the output inside batch norm's two backward kernels
(``kernels/fused.py``).  The numbers are the same, bit for bit, as the ops one by one
(``tests/test_nn_fusion.py``).

It folds only where nothing could tell: on a GPU, an exact ``BatchNorm1d``/``BatchNorm2d``
and ``ReLU``, neither with hooks (which must see the intermediate tensors), and a shortcut of
the output's shape and dtype.  Anywhere else -- the CPU, a replaced layer (``nn.Identity``
for a network without batch norm, a ``SyncBatchNorm``, a ``LeakyReLU``), a hook -- it is
the plain ``relu(bn(x) + shortcut)``, which is what it means.
"""
from ..core import backend
from ..core.tensor import Tensor
from .layers import BatchNorm1d, BatchNorm2d, ReLU

__all__ = []       # used by the models; not a torch name


def _foldable(bn, x, relu, shortcut):
    if not (isinstance(x, Tensor) and x.device.type != "cpu" and x.numel() and x.ndim >= 2):
        return False
    if type(bn) not in (BatchNorm1d, BatchNorm2d) or type(relu) is not ReLU or bn._has_hooks() or relu._has_hooks():
        return False
    return shortcut is None or (isinstance(shortcut, Tensor) and shortcut.shape == x.shape
                                and shortcut.dtype == x.dtype and shortcut.device == x.device)


def bn_relu(bn, x, relu, shortcut=None):
    """``relu(bn(x) + shortcut)`` (``relu(bn(x))`` without a shortcut): one op where it can be."""
    if _foldable(bn, x, relu, shortcut):
        with backend.on_device(x.device):          # as Module.__call__: the layer's counter on x's GPU
            return bn._normalize(x, relu=True, residual=shortcut)
    y = bn(x)
    return relu(y if shortcut is None else y + shortcut)

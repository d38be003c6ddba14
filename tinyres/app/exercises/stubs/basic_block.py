"""Exercise basic_block: a ResNet basic block, forward and backward.
                                                        tinyres exercise check basic_block
    y = relu(bn2(conv2(relu(bn1(conv1(x))))) + x)

3x3 convolutions, stride 1, padding 1, no bias; batch norm in training mode (eps 1e-5);
the identity shortcut.  That is tinyres.models.BasicBlock(C, C) in train mode.  params is a
dict with torchvision's names: 'conv1.weight', 'bn1.weight', 'bn1.bias', 'conv2.weight',
'bn2.weight', 'bn2.bias'.  basic_block_backward returns a dict with the gradient of each of
them and of 'x'.

Build it from your earlier exercises (same folder; the checker puts it on the import path):

    from conv2d import conv2d_forward, conv2d_backward
    from batch_norm import batch_norm_forward, batch_norm_backward
    from relu import relu_forward, relu_backward

The shortcut's gradient: x is used twice (by conv1 and by the addition), so its two
gradients add.  The math: docs/resnet.md ("The residual block and its gradient").
"""
import numpy as np  # noqa: F401 (for your code)


def basic_block_forward(x, params):
    raise NotImplementedError        # return y, cache


def basic_block_backward(gy, cache):
    raise NotImplementedError        # return {'x': ..., 'conv1.weight': ..., ...}

"""The CIFAR-10 ResNets of He et al. 2015, section 4.2: resnet20, 32, 44, 56, 110.

A 3x3 stem with 16 channels, three stages of n BasicBlocks at 16/32/64 channels (stride 2
at the start of stages 2 and 3), global average pooling and a linear head: 6n + 2 layers.
``width`` (16 in the paper) sets the channels of the three stages to width, 2·width, 4·width.
When a block changes the shape, its shortcut is either

* "A" (the paper's CIFAR choice, no parameters): the identity subsampled by 2 in space and
  zero-padded in channels, or
* "B": a 1x1 convolution + BatchNorm projection (as in the ImageNet ResNets).

``plain20`` ... ``plain110`` are the paper's plain networks: the same layers, no shortcuts
(``shortcut=None``), for the degradation experiment of its Figure 6.
"""
from .. import nn
from ..nn import functional as F
from . import pretrained
from .registry import register_model
from ..nn.fusion import bn_relu
from .resnet import BasicBlock, check_model_input, conv3x3, conv1x1, init_weights


class ShortcutA(nn.Module):
    """Option A: ``x[:, :, ::2, ::2]`` zero-padded with ``(planes - C) / 2`` channels on each side.

    Its backward is that of slicing and padding: the gradient of the kept pixels and
    channels passes through, the padded channels receive none.
    """

    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.stride = stride
        self.before = (planes - in_planes) // 2
        self.after = planes - in_planes - self.before

    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, self.before, self.after))

    def extra_repr(self):
        return f"stride={self.stride}, pad_channels=({self.before}, {self.after})"


class PlainBlock(BasicBlock):
    """A BasicBlock without its shortcut, ``relu(bn2(conv2(relu(bn1(conv1(x))))))``: the
    building block of the paper's *plain* networks, the same layers with nothing added."""

    def forward(self, x):
        out = bn_relu(self.bn1, self.conv1(x), self.relu)
        return bn_relu(self.bn2, self.conv2(out), self.relu)


class CifarResNet(nn.Module):
    num_downsamplings = 2   # the first block of layer2 and of layer3

    def __init__(self, depth, num_classes=10, in_channels=3, shortcut="A", zero_init_residual=False, width=16):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CifarResNet: depth must be 6n + 2 (20, 32, 44, 56, 110, ...), got {depth}")
        if shortcut not in ("A", "B", None):
            raise ValueError(f"CifarResNet: shortcut must be 'A', 'B' or None (a plain network), got {shortcut!r}")
        if shortcut is None and zero_init_residual:
            raise ValueError("CifarResNet: zero_init_residual needs shortcuts; a plain network would output zeros")
        if width < 1:
            raise ValueError(f"CifarResNet: width must be positive, got {width}")
        n = (depth - 2) // 6
        self.in_channels = in_channels
        self.min_input_size = 2 ** (self.num_downsamplings - 1) + 1
        self.shortcut = shortcut
        self.inplanes = width
        self.conv1 = conv3x3(in_channels, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(width, n)
        self.layer2 = self._make_layer(2 * width, n, stride=2)
        self.layer3 = self._make_layer(4 * width, n, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(4 * width, num_classes)
        init_weights(self, zero_init_residual)

    def _make_layer(self, planes, blocks, stride=1):
        block, downsample = BasicBlock if self.shortcut else PlainBlock, None
        if self.shortcut and (stride != 1 or self.inplanes != planes):
            if self.shortcut == "A":
                downsample = ShortcutA(self.inplanes, planes, stride)
            else:
                downsample = nn.Sequential(conv1x1(self.inplanes, planes, stride), nn.BatchNorm2d(planes))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [block(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        check_model_input(self, x)
        x = bn_relu(self.bn1, self.conv1(x), self.relu)
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(F.flatten(self.avgpool(x), 1))


def _cifar(depth):
    arch = f"resnet{depth}"

    def factory(num_classes=10, in_channels=3, shortcut="A", zero_init_residual=False, width=16, weights=None):
        asked = dict(num_classes=num_classes, in_channels=in_channels, shortcut=shortcut, width=width)

        def build(**trained_with):
            for key, value in trained_with.items():
                if key in asked and asked[key] != value:
                    raise ValueError(f"{arch}(weights={weights!r}) has {key}={value!r}, got {key}={asked[key]!r}; "
                                     "to fine-tune for other classes, load the weights and replace model.fc")
            model = CifarResNet(depth, zero_init_residual=zero_init_residual, **{**asked, **trained_with})
            model.arch = arch
            return model
        return build() if weights is None else pretrained.load_model(arch, weights, build)
    factory.__name__ = arch
    factory.__doc__ = (f"ResNet-{depth} for 32x32 images ({(depth - 2) // 6} blocks per stage), He et al. 2015. "
                       f"``weights``: the name of bundled pretrained weights (see tinyres.models.pretrained).")
    return register_model(factory)


def _plain(depth):
    arch = f"plain{depth}"

    def factory(num_classes=10, in_channels=3, width=16):
        model = CifarResNet(depth, num_classes, in_channels, shortcut=None, width=width)
        model.arch = arch
        return model
    factory.__name__ = arch
    factory.__doc__ = (f"Plain-{depth}: ResNet-{depth}'s layers without the shortcuts, the paper's plain "
                       "counterpart (section 4.2, Figure 6).")
    return register_model(factory)


resnet8 = _cifar(8)      # not in the paper: the smallest member, for quick demos
resnet20 = _cifar(20)
resnet32 = _cifar(32)
resnet44 = _cifar(44)
resnet56 = _cifar(56)
resnet110 = _cifar(110)
plain20 = _plain(20)
plain32 = _plain(32)
plain44 = _plain(44)
plain56 = _plain(56)
plain110 = _plain(110)

"""The ImageNet ResNets, read top to bottom as torchvision's ``models/resnet.py``.

He et al., "Deep Residual Learning for Image Recognition" (2015).  ``Bottleneck`` puts
the stride on its 3x3 convolution ("ResNet v1.5"), as torchvision does.  Module and
parameter names are torchvision's, so its state_dicts load with ``strict=True``.

``bn_relu(bn, x, relu, shortcut)`` is ``relu(bn(x) + shortcut)`` (torchvision's three
lines), done as one op on a GPU (``nn/fusion.py``: the same numbers, fewer launches).
"""
from . import pretrained
from .. import nn
from ..errors import UserError
from ..nn import functional as F
from ..nn.fusion import bn_relu
from .registry import register_model


def conv3x3(in_planes, out_planes, stride=1, groups=1, dilation=1):
    """3x3 convolution with padding."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation,
                     groups=groups, bias=False, dilation=dilation)


def conv1x1(in_planes, out_planes, stride=1):
    """1x1 convolution."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1):
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock only supports groups=1 and base_width=64")
        if dilation > 1:
            raise NotImplementedError("BasicBlock does not support dilation > 1")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = bn_relu(self.bn1, self.conv1(x), self.relu)             # relu(bn1(conv1(x)))
        return bn_relu(self.bn2, self.conv2(out), self.relu, identity)  # relu(bn2(conv2(out)) + identity):
                                                                         # gradients flow down both paths


class Bottleneck(nn.Module):
    """1x1 (reduce) -> 3x3 (stride, groups) -> 1x1 (expand x4), plus a shortcut."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, groups, dilation)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = bn_relu(self.bn1, self.conv1(x), self.relu)
        out = bn_relu(self.bn2, self.conv2(out), self.relu)
        return bn_relu(self.bn3, self.conv3(out), self.relu, identity)      # relu(bn3(conv3(out)) + identity)


def init_weights(model, zero_init_residual):
    """torchvision's initialisation, each layer applying its own rule (``Module.he_init_``):
    Kaiming-normal (fan_out, relu) convolutions, normalization weight 1 and bias 0; with
    ``zero_init_residual`` each block's last BN starts at 0, so every residual branch starts
    as the identity."""
    for m in model.modules():
        m.he_init_()
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, Bottleneck):
                nn.init.constant_(m.bn3.weight, 0)
            elif isinstance(m, BasicBlock):
                nn.init.constant_(m.bn2.weight, 0)


def check_model_input(model, x):
    """A clear error for an input the network cannot take: wrong rank, channels or size."""
    name = getattr(model, "arch", type(model).__name__)
    if x.ndim != 4 or x.shape[1] != model.in_channels:
        raise UserError(f"{name}: expected input of shape (N, {model.in_channels}, H, W), got {x.shape}")
    if min(x.shape[2:]) < model.min_input_size:
        raise UserError(f"{name}: input {x.shape[2]}x{x.shape[3]} is too small; the network halves "
                         f"the image {model.num_downsamplings} times and needs at least "
                         f"{model.min_input_size}x{model.min_input_size} (every stride-2 layer must see "
                         "a map of at least 2x2)")


class ResNet(nn.Module):
    """The ImageNet ResNet: 7x7/2 stem, 3x3/2 max pool, four stages, global average pool, fc."""

    num_downsamplings = 5   # stem conv, max pool, and the first block of layer2..layer4

    def __init__(self, block, layers, num_classes=1000, zero_init_residual=False, groups=1,
                 width_per_group=64, in_channels=3):
        super().__init__()
        self.in_channels = in_channels
        self.min_input_size = 2 ** (self.num_downsamplings - 1) + 1
        self.inplanes = 64
        self.groups = groups
        self.base_width = width_per_group
        self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        init_weights(self, zero_init_residual)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups, base_width=self.base_width))
        return nn.Sequential(*layers)

    def forward(self, x):
        check_model_input(self, x)
        x = self.maxpool(bn_relu(self.bn1, self.conv1(x), self.relu))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = F.flatten(self.avgpool(x), 1)
        return self.fc(x)


def _resnet(arch, block, layers, weights=None, progress=True, **kwargs):
    """``weights`` and ``progress`` as torchvision's factories take them: ``weights`` names
    bundled weights (none are bundled for these yet, and nothing is downloaded; a
    torchvision state_dict loads with ``model.load_state_dict(tinyres.load(path))``)."""
    def build(**trained_with):
        model = ResNet(block, layers, **{**kwargs, **trained_with})
        model.arch = arch
        return model
    return build() if weights is None else pretrained.load_model(arch, str(weights), build)


@register_model
def resnet18(*, weights=None, progress=True, **kwargs):
    return _resnet("resnet18", BasicBlock, [2, 2, 2, 2], weights, progress, **kwargs)


@register_model
def resnet34(*, weights=None, progress=True, **kwargs):
    return _resnet("resnet34", BasicBlock, [3, 4, 6, 3], weights, progress, **kwargs)


@register_model
def resnet50(*, weights=None, progress=True, **kwargs):
    return _resnet("resnet50", Bottleneck, [3, 4, 6, 3], weights, progress, **kwargs)


@register_model
def resnet101(*, weights=None, progress=True, **kwargs):
    return _resnet("resnet101", Bottleneck, [3, 4, 23, 3], weights, progress, **kwargs)


@register_model
def resnet152(*, weights=None, progress=True, **kwargs):
    return _resnet("resnet152", Bottleneck, [3, 8, 36, 3], weights, progress, **kwargs)


@register_model
def resnext50_32x4d(*, weights=None, progress=True, **kwargs):
    return _resnet("resnext50_32x4d", Bottleneck, [3, 4, 6, 3], weights, progress, groups=32, width_per_group=4,
                   **kwargs)


@register_model
def wide_resnet50_2(*, weights=None, progress=True, **kwargs):
    return _resnet("wide_resnet50_2", Bottleneck, [3, 4, 6, 3], weights, progress, width_per_group=128, **kwargs)

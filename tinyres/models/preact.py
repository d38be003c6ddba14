"""Pre-activation ResNets (ResNet v2): He, Zhang, Ren and Sun, "Identity Mappings in Deep
Residual Networks" (2016).

The original block adds its shortcut and *then* applies a ReLU; here BN and ReLU come
*before* each convolution, and nothing follows the addition:

    original:        y = relu(x + bn2(conv2(relu(bn1(conv1(x))))))
    pre-activation:  y = x + conv2(relu(bn2(conv1(relu(bn1(x))))))

so the shortcut path is a pure identity from block to block, ``x_L = x_l + sum F(x_i)``,
and the gradient reaches every block through a sum, not through a product of ReLU masks
(docs/resnet.md derives it).  Where the shape changes, the shortcut is a 1x1 convolution
of the *pre-activated* input (the paper's code), without BN.  A final BN and ReLU come
before the pooling.  Parameter names follow the original family where they can.
"""
from .. import nn
from ..nn import functional as F
from ..nn.fusion import bn_relu
from .registry import register_model
from .resnet import check_model_input, conv1x1, conv3x3, init_weights


class PreActBlock(nn.Module):
    """``x + conv2(relu(bn2(conv1(relu(bn1(x))))))``: two 3x3 convolutions, each after BN and ReLU."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.downsample = downsample

    def forward(self, x):
        out = bn_relu(self.bn1, x, self.relu)          # relu(bn1(x)), one op on a GPU (nn/fusion.py)
        identity = x if self.downsample is None else self.downsample(out)
        out = self.conv2(bn_relu(self.bn2, self.conv1(out), self.relu))
        return out + identity                 # nothing after the addition


class PreActBottleneck(nn.Module):
    """BN-ReLU-1x1 (reduce), BN-ReLU-3x3 (stride), BN-ReLU-1x1 (expand x4), plus the shortcut."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = conv1x1(inplanes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.downsample = downsample

    def forward(self, x):
        out = bn_relu(self.bn1, x, self.relu)
        identity = x if self.downsample is None else self.downsample(out)
        out = self.conv2(bn_relu(self.bn2, self.conv1(out), self.relu))
        out = self.conv3(bn_relu(self.bn3, out, self.relu))
        return out + identity


def _make_stage(model, block, planes, blocks, stride):
    """``blocks`` blocks at ``planes`` (x expansion) channels, the first with ``stride``."""
    downsample = None
    if stride != 1 or model.inplanes != planes * block.expansion:
        downsample = conv1x1(model.inplanes, planes * block.expansion, stride)
    layers = [block(model.inplanes, planes, stride, downsample)]
    model.inplanes = planes * block.expansion
    layers += [block(model.inplanes, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class PreActResNet(nn.Module):
    """The ImageNet layout with pre-activation blocks: 7x7/2 stem (conv, BN, ReLU), 3x3/2 max
    pool, four stages at 64..512 channels, then BN, ReLU, global average pool, fc."""

    num_downsamplings = 5

    def __init__(self, block, layers, num_classes=1000, in_channels=3):
        super().__init__()
        self.in_channels, self.min_input_size = in_channels, 2 ** (self.num_downsamplings - 1) + 1
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = _make_stage(self, block, 64, layers[0], 1)
        self.layer2 = _make_stage(self, block, 128, layers[1], 2)
        self.layer3 = _make_stage(self, block, 256, layers[2], 2)
        self.layer4 = _make_stage(self, block, 512, layers[3], 2)
        self.bn_final = nn.BatchNorm2d(self.inplanes)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(self.inplanes, num_classes)
        init_weights(self, zero_init_residual=False)

    def forward(self, x):
        check_model_input(self, x)
        x = self.maxpool(bn_relu(self.bn1, self.conv1(x), self.relu))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = bn_relu(self.bn_final, x, self.relu)
        return self.fc(F.flatten(self.avgpool(x), 1))


class CifarPreActResNet(nn.Module):
    """The CIFAR layout with pre-activation blocks: a 3x3 stem with 16 channels, three
    stages at 16/32/64 channels (x4 for bottlenecks), then BN, ReLU, pool, fc.  Depth
    6n + 2 with basic blocks, 9n + 2 with bottlenecks (preact_resnet164: n = 18)."""

    num_downsamplings = 2

    def __init__(self, depth, block=PreActBlock, num_classes=10, in_channels=3):
        super().__init__()
        per_block = 2 if block is PreActBlock else 3
        if (depth - 2) % (3 * per_block):
            raise ValueError(f"CifarPreActResNet: depth must be {3 * per_block}n + 2 for {block.__name__}, "
                             f"got {depth}")
        n = (depth - 2) // (3 * per_block)
        self.in_channels, self.min_input_size = in_channels, 2 ** (self.num_downsamplings - 1) + 1
        self.inplanes = 16
        self.conv1 = conv3x3(in_channels, 16)
        self.layer1 = _make_stage(self, block, 16, n, 1)
        self.layer2 = _make_stage(self, block, 32, n, 2)
        self.layer3 = _make_stage(self, block, 64, n, 2)
        self.bn_final = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(self.inplanes, num_classes)
        init_weights(self, zero_init_residual=False)

    def forward(self, x):
        check_model_input(self, x)
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        x = bn_relu(self.bn_final, x, self.relu)
        return self.fc(F.flatten(self.avgpool(x), 1))


def _named(arch, build, doc):
    def factory(**kwargs):
        model = build(**kwargs)
        model.arch = arch
        return model
    factory.__name__, factory.__doc__ = arch, doc
    return register_model(factory)


preact_resnet18 = _named("preact_resnet18", lambda **k: PreActResNet(PreActBlock, [2, 2, 2, 2], **k),
                         "Pre-activation ResNet-18 (ImageNet layout), He et al. 2016.")
preact_resnet34 = _named("preact_resnet34", lambda **k: PreActResNet(PreActBlock, [3, 4, 6, 3], **k),
                         "Pre-activation ResNet-34 (ImageNet layout), He et al. 2016.")
preact_resnet50 = _named("preact_resnet50", lambda **k: PreActResNet(PreActBottleneck, [3, 4, 6, 3], **k),
                         "Pre-activation ResNet-50 (ImageNet layout, bottlenecks), He et al. 2016.")
preact_resnet20, preact_resnet32, preact_resnet44, preact_resnet56, preact_resnet110 = (
    _named(f"preact_resnet{d}", lambda d=d, **k: CifarPreActResNet(d, PreActBlock, **k),
           f"Pre-activation ResNet-{d} for 32x32 images, He et al. 2016.") for d in (20, 32, 44, 56, 110))
preact_resnet164 = _named("preact_resnet164", lambda **k: CifarPreActResNet(164, PreActBottleneck, **k),
                          "Pre-activation ResNet-164 for 32x32 images (bottlenecks), He et al. 2016: 1.7M parameters.")

"""An independent PyTorch ResNet, written here from the papers: the twin that tests/test_models.py
compares tinyres's models with, and that benchmarks/bench.py times (torchvision may not load)."""
import torch
import torch.nn as tnn
import torch.nn.functional as TF


class TorchBlock(tnn.Module):
    def __init__(self, cin, planes, stride, bottleneck, groups=1, base_width=64, shortcut="B"):
        super().__init__()
        out = planes * (4 if bottleneck else 1)
        self.bottleneck = bottleneck
        if bottleneck:
            width = int(planes * base_width / 64) * groups
            self.conv1, self.bn1 = tnn.Conv2d(cin, width, 1, bias=False), tnn.BatchNorm2d(width)
            self.conv2 = tnn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
            self.bn2 = tnn.BatchNorm2d(width)
            self.conv3, self.bn3 = tnn.Conv2d(width, out, 1, bias=False), tnn.BatchNorm2d(out)
        else:
            self.conv1 = tnn.Conv2d(cin, planes, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(planes)
            self.conv2, self.bn2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False), tnn.BatchNorm2d(planes)
        self.stride, self.pad_a, self.plain = stride, None, shortcut is None
        if not self.plain and (stride != 1 or cin != out):
            if shortcut == "A":
                self.pad_a = ((out - cin) // 2, out - cin - (out - cin) // 2)
            else:
                self.downsample = tnn.Sequential(tnn.Conv2d(cin, out, 1, stride, bias=False), tnn.BatchNorm2d(out))

    def forward(self, x):
        if self.plain:       # the paper's plain network: no shortcut at all
            return TF.relu(self.bn2(self.conv2(TF.relu(self.bn1(self.conv1(x))))))
        if self.pad_a is not None:
            identity = TF.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0) + self.pad_a)
        else:
            identity = self.downsample(x) if hasattr(self, "downsample") else x
        out = TF.relu(self.bn1(self.conv1(x)))
        if self.bottleneck:
            out = TF.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
        else:
            out = self.bn2(self.conv2(out))
        return TF.relu(out + identity)


class TorchResNet(tnn.Module):
    def __init__(self, layers, bottleneck, num_classes, in_channels, cifar=False, shortcut="B", groups=1,
                 base_width=64):
        super().__init__()
        widths = (16, 32, 64) if cifar else (64, 128, 256, 512)
        self.cifar = cifar
        if cifar:
            self.conv1 = tnn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        else:
            self.conv1 = tnn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = tnn.BatchNorm2d(widths[0])
        cin = widths[0]
        for i, (w, n) in enumerate(zip(widths, layers)):
            blocks = []
            for j in range(n):
                blocks.append(TorchBlock(cin, w, 2 if (i and not j) else 1, bottleneck, groups, base_width, shortcut))
                cin = w * (4 if bottleneck else 1)
            setattr(self, f"layer{i + 1}", tnn.Sequential(*blocks))
        self.nstages = len(widths)
        self.fc = tnn.Linear(cin, num_classes)

    def forward(self, x):
        x = TF.relu(self.bn1(self.conv1(x)))
        if not self.cifar:
            x = TF.max_pool2d(x, 3, 2, 1)
        for i in range(self.nstages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(torch.flatten(TF.adaptive_avg_pool2d(x, 1), 1))


TORCH_TWINS = {
    "resnet18": lambda **k: TorchResNet([2, 2, 2, 2], False, **k),
    "resnet50": lambda **k: TorchResNet([3, 4, 6, 3], True, **k),
    "resnet20": lambda **k: TorchResNet([3, 3, 3], False, cifar=True, shortcut="A", **k),
    "plain20": lambda **k: TorchResNet([3, 3, 3], False, cifar=True, shortcut=None, **k),
}


# ---------------------------------------------------------------- pre-activation (He et al. 2016)

class TorchPreActBlock(tnn.Module):
    """x + F(x) with BN-ReLU before each convolution; a 1x1 projection of the pre-activated
    input where the shape changes; nothing after the addition."""

    def __init__(self, cin, planes, stride, bottleneck):
        super().__init__()
        out = planes * (4 if bottleneck else 1)
        self.bottleneck = bottleneck
        self.bn1 = tnn.BatchNorm2d(cin)
        if bottleneck:
            self.conv1 = tnn.Conv2d(cin, planes, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(planes)
            self.conv2 = tnn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.bn3 = tnn.BatchNorm2d(planes)
            self.conv3 = tnn.Conv2d(planes, out, 1, bias=False)
        else:
            self.conv1 = tnn.Conv2d(cin, planes, 3, stride, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(planes)
            self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        if stride != 1 or cin != out:
            self.downsample = tnn.Conv2d(cin, out, 1, stride, bias=False)

    def forward(self, x):
        pre = TF.relu(self.bn1(x))
        shortcut = self.downsample(pre) if hasattr(self, "downsample") else x
        out = self.conv2(TF.relu(self.bn2(self.conv1(pre))))
        if self.bottleneck:
            out = self.conv3(TF.relu(self.bn3(out)))
        return out + shortcut


class TorchPreActResNet(tnn.Module):
    def __init__(self, layers, bottleneck, num_classes, in_channels, cifar=False):
        super().__init__()
        self.cifar = cifar
        widths = (16, 32, 64) if cifar else (64, 128, 256, 512)
        if cifar:
            self.conv1 = tnn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        else:
            self.conv1 = tnn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
            self.bn1 = tnn.BatchNorm2d(64)
        cin = widths[0]
        for i, (w, n) in enumerate(zip(widths, layers)):
            blocks = []
            for j in range(n):
                blocks.append(TorchPreActBlock(cin, w, 2 if (i and not j) else 1, bottleneck))
                cin = w * (4 if bottleneck else 1)
            setattr(self, f"layer{i + 1}", tnn.Sequential(*blocks))
        self.nstages = len(widths)
        self.bn_final = tnn.BatchNorm2d(cin)
        self.fc = tnn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.conv1(x)
        if not self.cifar:
            x = TF.max_pool2d(TF.relu(self.bn1(x)), 3, 2, 1)
        for i in range(self.nstages):
            x = getattr(self, f"layer{i + 1}")(x)
        x = TF.relu(self.bn_final(x))
        return self.fc(torch.flatten(TF.adaptive_avg_pool2d(x, 1), 1))


TORCH_TWINS.update({
    "preact_resnet18": lambda **k: TorchPreActResNet([2, 2, 2, 2], False, **k),
    "preact_resnet50": lambda **k: TorchPreActResNet([3, 4, 6, 3], True, **k),
    "preact_resnet20": lambda **k: TorchPreActResNet([3, 3, 3], False, cifar=True, **k),
    "preact_resnet164": lambda **k: TorchPreActResNet([18, 18, 18], True, cifar=True, **k),
})

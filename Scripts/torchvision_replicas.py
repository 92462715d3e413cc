"""torchvision's classification architectures rebuilt module for module, with torchvision's parameter
names (torchvision from PyPI needs a CUDA torch): the fixtures of make-fixtures.py and the PyTorch
side of benchmark_transfer.py."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, inplanes, planes, stride, bottleneck):
        super().__init__()
        out, self.bottleneck = planes * (4 if bottleneck else 1), bottleneck
        if bottleneck:
            self.conv1, self.bn1 = nn.Conv2d(inplanes, planes, 1, bias=False), nn.BatchNorm2d(planes)
            self.conv2, self.bn2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes)
            self.conv3, self.bn3 = nn.Conv2d(planes, out, 1, bias=False), nn.BatchNorm2d(out)
        else:
            self.conv1, self.bn1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes)
            self.conv2, self.bn2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False), nn.BatchNorm2d(planes)
        self.downsample = (nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out))
                           if stride != 1 or inplanes != out else None)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.bottleneck:
            y = self.bn3(self.conv3(F.relu(y)))
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))

class ResNet(nn.Module):
    def __init__(self, blocks, bottleneck):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)
        self.relu, self.maxpool = nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
        inplanes = 64
        for stage, count in enumerate(blocks):
            planes, layers = 64 << stage, []
            for index in range(count):
                layers.append(Block(inplanes, planes, 2 if index == 0 and stage > 0 else 1, bottleneck))
                inplanes = planes * (4 if bottleneck else 1)
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layers))
        self.avgpool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(inplanes, 1000)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))

class VGGFeatures(nn.Module):
    def __init__(self):
        super().__init__()
        layers, channels = [], 3
        for v in [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                channels = v
        self.features = nn.Sequential(*layers)

    def forward(self, x):
        return self.features(x)

def conv_bn(inp, out, kernel, stride=1, groups=1, activation=nn.ReLU6):  # torchvision's Conv2dNormActivation
    layers = [nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(out)]
    return nn.Sequential(*(layers + [activation(inplace=True)] if activation else layers))

class InvertedResidual(nn.Module):
    def __init__(self, inp, out, stride, expansion):
        super().__init__()
        hidden, self.residual = inp * expansion, stride == 1 and inp == out
        layers = [conv_bn(inp, hidden, 1)] if expansion != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), nn.Conv2d(hidden, out, 1, bias=False), nn.BatchNorm2d(out)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)

def make_divisible(value, divisor=8):  # torchvision's and Keras's channel rounding
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class MobileNetV2(nn.Module):
    def __init__(self, width_mult=1.0):
        super().__init__()
        inp = make_divisible(32 * width_mult)
        layers = [conv_bn(3, inp, 3, 2)]
        for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
            for i in range(n):
                layers.append(InvertedResidual(inp, make_divisible(c * width_mult), s if i == 0 else 1, t))
                inp = make_divisible(c * width_mult)
        self.features = nn.Sequential(*layers, conv_bn(inp, make_divisible(1280 * max(1.0, width_mult)), 1))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

    def forward(self, x):
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))

class SqueezeExcitation(nn.Module):  # torchvision.ops.SqueezeExcitation with SiLU
    def __init__(self, channels, squeeze):
        super().__init__()
        self.avgpool, self.fc1, self.fc2 = nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, squeeze, 1), nn.Conv2d(squeeze, channels, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(F.silu(self.fc1(self.avgpool(x)))))

class MBConv(nn.Module):
    def __init__(self, inp, out, kernel, stride, expansion):
        super().__init__()
        hidden, self.residual = inp * expansion, stride == 1 and inp == out
        layers = [conv_bn(inp, hidden, 1, activation=nn.SiLU)] if expansion != 1 else []
        layers += [conv_bn(hidden, hidden, kernel, stride, groups=hidden, activation=nn.SiLU), SqueezeExcitation(hidden, max(1, inp // 4)),
                   conv_bn(hidden, out, 1, activation=None)]
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.block(x) if self.residual else self.block(x)

class EfficientNetB0(nn.Module):
    def __init__(self):
        super().__init__()
        layers, inp = [conv_bn(3, 32, 3, 2, activation=nn.SiLU)], 32
        for t, k, s, c, n in [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]:
            stage = []
            for i in range(n):
                stage.append(MBConv(inp, c, k, s if i == 0 else 1, t))
                inp = c
            layers.append(nn.Sequential(*stage))
        self.features = nn.Sequential(*layers, conv_bn(inp, 1280, 1, activation=nn.SiLU))
        self.avgpool, self.classifier = nn.AdaptiveAvgPool2d(1), nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

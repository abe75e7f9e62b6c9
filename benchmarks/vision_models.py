"""Compact ResNet-50, EfficientNet-B0, ConvNeXt-T and ViT-B/16, laid out as torchvision's.

The benchmarks use torchvision's own builders when ``import torchvision`` works (the GPU
machine); these are the fallback, and what the CPU smoke runs and the look-alike sweep use. Each
keeps torchvision's module layout where it matters to NeuroView (which activation modules are
called, on which tensor layout, after which producing layer): ResNet's one in-place ReLU called
three times per bottleneck, EfficientNet's SiLU/Sigmoid squeeze-excitation, ConvNeXt's
channels-last Linear/GELU MLP between two permutes, ViT's class token and token MLP. ``width``
scales every channel count (1.0: the real network), so a CPU run can use the same code at 1/8.

No dependency beyond torch.

    python benchmarks/vision_models.py   # each model's parameter count at full width
"""

from __future__ import annotations

import argparse

import torch
from torch import Tensor, nn


def _ch(c: int, width: float, div: int = 8) -> int:
    """Channel count ``c`` scaled by ``width``, rounded to a multiple of ``div`` (at least ``div``)."""
    return max(div, int(round(c * width / div)) * div)


# ----------------------------------------------------------------------------- ResNet-50
class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1):
        super().__init__()
        cout = planes * self.expansion
        self.conv1, self.bn1 = nn.Conv2d(cin, planes, 1, bias=False), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = nn.Conv2d(planes, cout, 1, bias=False), nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)  # one module, called three times (three sites)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += idt
        return self.relu(out)


class ResNet(nn.Module):
    def __init__(self, layers=(3, 4, 6, 3), num_classes: int = 1000, width: float = 1.0):
        super().__init__()
        c = _ch(64, width)
        self.conv1, self.bn1 = nn.Conv2d(3, c, 7, 2, 3, bias=False), nn.BatchNorm2d(c)
        self.relu, self.maxpool = nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
        stages = []
        for i, n in enumerate(layers):
            planes = _ch(64 * 2**i, width)
            blocks = []
            for j in range(n):
                blocks.append(Bottleneck(c, planes, 2 if (j == 0 and i > 0) else 1))
                c = planes * Bottleneck.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(c, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet50(num_classes: int = 1000, width: float = 1.0, **_) -> nn.Module:
    return ResNet((3, 4, 6, 3), num_classes, width)


# ------------------------------------------------------------------------ EfficientNet-B0
class ConvBNAct(nn.Sequential):
    def __init__(self, cin, cout, k=3, stride=1, groups=1, act=True):
        layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        super().__init__(*layers, *([nn.SiLU(inplace=True)] if act else []))


class SqueezeExcitation(nn.Module):
    """torchvision.ops.SqueezeExcitation: pool, 1x1 conv, SiLU, 1x1 conv, Sigmoid gate."""

    def __init__(self, c: int, squeeze: int):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.fc2 = nn.Conv2d(c, squeeze, 1), nn.Conv2d(squeeze, c, 1)
        self.activation, self.scale_activation = nn.SiLU(), nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))


class MBConv(nn.Module):
    def __init__(self, cin, cout, expand, k, stride, se_in):
        super().__init__()
        mid = cin * expand
        layers = [ConvBNAct(cin, mid, 1)] if expand != 1 else []
        layers += [ConvBNAct(mid, mid, k, stride, groups=mid), SqueezeExcitation(mid, max(1, se_in // 4)),
                   ConvBNAct(mid, cout, 1, act=False)]
        self.block = nn.Sequential(*layers)
        self.use_res = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = self.block(x)
        return y + x if self.use_res else y


class EfficientNet(nn.Module):
    # expand, kernel, stride, channels in, channels out, repeats (torchvision's B0 table)
    B0 = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
          (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1))

    def __init__(self, num_classes: int = 1000, width: float = 1.0):
        super().__init__()
        stem = _ch(32, width)
        layers = [ConvBNAct(3, stem, 3, 2)]
        for e, k, s, cin, cout, n in self.B0:
            cin, cout = _ch(cin, width), _ch(cout, width)
            stage = []
            for j in range(n):
                c = cin if j == 0 else cout
                stage.append(MBConv(c, cout, e, k, s if j == 0 else 1, se_in=c))
            layers.append(nn.Sequential(*stage))
        last = _ch(1280, width)
        layers.append(ConvBNAct(_ch(320, width), last, 1))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2, inplace=True), nn.Linear(last, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def efficientnet_b0(num_classes: int = 1000, width: float = 1.0, **_) -> nn.Module:
    return EfficientNet(num_classes, width)


# ------------------------------------------------------------------------------ ConvNeXt-T
class Permute(nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.dims = list(dims)

    def forward(self, x: Tensor) -> Tensor:
        return torch.permute(x, self.dims)


class LayerNorm2d(nn.LayerNorm):
    """Channels-first LayerNorm (torchvision's): permute, normalize the last dim, permute back."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class CNBlock(nn.Module):
    """torchvision's CNBlock: depthwise 7x7, Permute, LayerNorm, Linear 4x, GELU, Linear, Permute, layer scale."""

    def __init__(self, dim: int, layer_scale: float = 1e-6):
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(dim, dim, 7, padding=3, groups=dim), Permute([0, 2, 3, 1]),
                                   nn.LayerNorm(dim, eps=1e-6), nn.Linear(dim, 4 * dim), nn.GELU(),
                                   nn.Linear(4 * dim, dim), Permute([0, 3, 1, 2]))
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), layer_scale))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.layer_scale * self.block(x)


class ConvNeXt(nn.Module):
    def __init__(self, dims=(96, 192, 384, 768), depths=(3, 3, 9, 3), num_classes: int = 1000, width: float = 1.0):
        super().__init__()
        dims = [_ch(d, width) for d in dims]
        layers = [nn.Sequential(nn.Conv2d(3, dims[0], 4, 4), LayerNorm2d(dims[0], eps=1e-6))]
        for i, (d, n) in enumerate(zip(dims, depths)):
            layers.append(nn.Sequential(*[CNBlock(d) for _ in range(n)]))
            if i + 1 < len(dims):
                layers.append(nn.Sequential(LayerNorm2d(d, eps=1e-6), nn.Conv2d(d, dims[i + 1], 2, 2)))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(LayerNorm2d(dims[-1], eps=1e-6), nn.Flatten(1), nn.Linear(dims[-1], num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.avgpool(self.features(x)))


def convnext_tiny(num_classes: int = 1000, width: float = 1.0, **_) -> nn.Module:
    return ConvNeXt(num_classes=num_classes, width=width)


# ------------------------------------------------------------------------------- ViT-B/16
class MLPBlock(nn.Sequential):
    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout))


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(dim, hidden)

    def forward(self, x: Tensor) -> Tensor:
        y = self.ln_1(x)
        y, _ = self.self_attention(y, y, y, need_weights=False)
        x = x + y
        return x + self.mlp(self.ln_2(x))


class VisionTransformer(nn.Module):
    """Patch embedding, class token, learned position embedding of a fixed grid (so one input size)."""

    def __init__(self, image_size=224, patch=16, depth=12, heads=12, dim=768, hidden=3072, num_classes=1000):
        super().__init__()
        self.image_size, self.patch_size = image_size, patch
        self.conv_proj = nn.Conv2d(3, dim, patch, patch)
        n = (image_size // patch) ** 2 + 1
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.empty(1, n, dim).normal_(std=0.02))
        self.layers = nn.Sequential(*[EncoderBlock(dim, heads, hidden) for _ in range(depth)])
        self.ln = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        torch._assert(x.shape[-2:] == (self.image_size, self.image_size), f"expected {self.image_size}x{self.image_size} input")
        t = self.conv_proj(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.class_token.expand(len(t), -1, -1), t], 1) + self.pos_embedding
        return self.head(self.ln(self.layers(t))[:, 0])


def vit_b_16(num_classes: int = 1000, width: float = 1.0, image_size: int = 224, **_) -> nn.Module:
    heads = 12
    dim = max(heads, int(round(768 * width / heads)) * heads)
    return VisionTransformer(image_size, 16, 12, heads, dim, 4 * dim, num_classes)


BUILDERS = {"resnet50": resnet50, "efficientnet_b0": efficientnet_b0, "convnext_tiny": convnext_tiny, "vit_b_16": vit_b_16}


def build(name: str, *, source: str = "auto", num_classes: int = 1000, width: float = 1.0,
          image_size: int = 224) -> tuple[nn.Module, str]:
    """``(model, where it came from)``: torchvision's builder (random weights) when ``source`` is
    ``"torchvision"``, or ``"auto"`` with torchvision importable and ``width == 1``; else ours."""
    if source not in ("auto", "torchvision", "own"):
        raise ValueError(f"source: expected auto, torchvision or own, got {source!r}")
    if source != "own" and (source == "torchvision" or width == 1.0):
        try:
            import torchvision
        except ImportError:
            if source == "torchvision":
                raise
        else:
            kw = {"image_size": image_size} if name.startswith("vit") else {}
            model = getattr(torchvision.models, name)(weights=None, num_classes=num_classes, **kw)
            return model, f"torchvision {torchvision.__version__}"
    return BUILDERS[name](num_classes=num_classes, width=width, image_size=image_size), \
        f"benchmarks/vision_models.py (width {width:g})"


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def main(argv=None) -> None:
    """Prints each model's parameter count at full width: 25.6 M, 5.3 M, 28.6 M, 86.6 M as torchvision's."""
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    for n, f in BUILDERS.items():
        with torch.device("meta"):
            m = f()
        print(f"{n}: {num_params(m) / 1e6:.1f} M parameters")


if __name__ == "__main__":
    main()

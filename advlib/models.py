"""Architectures by name, each wrapped so that it takes images in [0,1].

Every model is an :class:`ImageClassifier`: ``normalize`` (CIFAR-10 mean/std, a layer inside the
model so attacks never see dataset statistics) -> ``body`` (to the penultimate representation)
-> ``head`` (a linear layer). ``model.features(x)`` is the penultimate representation g(x) that
representation matching (D_R / D_NR construction) descends on.

Names: ``linear`` (a linear classifier on pixels) and ``mlp`` (one hidden layer of 512), for the
transfer study's other inductive biases; ``tiny`` (~25k params, smoke tests), ``small`` (~95k, the
CPU profile), ``airbench``
(airbench94-style, GPUs), ``resnet18`` and ``resnet50`` in the CIFAR form used by the authors'
robustness library (3x3 stem, no max-pool).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)  # the values the robustness library uses


class InputNormalize(nn.Module):
    """(x - mean) / std with x in [0,1]; buffers move with the model."""

    def __init__(self, mean=CIFAR10_MEAN, std=CIFAR10_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


class ImageClassifier(nn.Module):
    def __init__(self, body: nn.Module, feat_dim: int, num_classes: int = 10, head_scale: float = 1.0):
        super().__init__()
        self.normalize = InputNormalize()
        self.body = body
        self.head = nn.Linear(feat_dim, num_classes, bias=head_scale == 1.0)
        self.head_scale = head_scale  # airbench scales logits down (1/9) instead of a bias
        self.feat_dim = feat_dim

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate representation g(x), shape [N, feat_dim]; x in [0,1] NCHW."""
        return self.body(self.normalize(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.features(x))
        return out * self.head_scale if self.head_scale != 1.0 else out


def _conv_bn(cin, cout, pool=True):
    layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return layers


def _plain_cnn(widths) -> tuple[nn.Module, int]:
    layers, cin = [], 3
    for w in widths:
        layers += _conv_bn(cin, w)
        cin = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), cin


# --- airbench94-style network (Keller Jordan's cifar10-airbench), without its custom init ----
class _ConvGroup(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = F.max_pool2d(self.conv1(x), 2)
        x = F.gelu(self.bn1(x))
        return F.gelu(self.bn2(self.conv2(x)))


def _airbench_body(widths=(64, 256, 256)) -> tuple[nn.Module, int]:
    body = nn.Sequential(
        nn.Conv2d(3, 24, 2, padding=0, bias=True),  # airbench's 2x2 "whitening" stem (learned here)
        nn.GELU(),
        _ConvGroup(24, widths[0]),
        _ConvGroup(widths[0], widths[1]),
        _ConvGroup(widths[1], widths[2]),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
    )
    return body, widths[2]


# --- CIFAR ResNets (3x3 stem, no max-pool), as in the robustness library -----------------------
class _BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != planes * 4:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


def _resnet_body(block, counts) -> tuple[nn.Module, int]:
    layers = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True)]
    cin = 64
    for i, (planes, n) in enumerate(zip((64, 128, 256, 512), counts, strict=True)):
        for j in range(n):
            stride = 2 if (i > 0 and j == 0) else 1
            layers.append(block(cin, planes, stride))
            cin = planes * block.expansion
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), cin


def _flat_body(hidden: int | None) -> tuple[nn.Module, int]:
    """Pixels flattened (linear model), or one hidden ReLU layer of ``hidden`` units (MLP)."""
    if hidden is None:
        return nn.Flatten(), 3 * 32 * 32
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, hidden), nn.ReLU(inplace=True)), hidden


_BUILDERS = {
    "linear": lambda: _flat_body(None),
    "mlp": lambda: _flat_body(512),
    "tiny": lambda: _plain_cnn((16, 32, 64)),
    "small": lambda: _plain_cnn((32, 64, 128)),
    "airbench": _airbench_body,
    "resnet18": lambda: _resnet_body(_BasicBlock, (2, 2, 2, 2)),
    "resnet50": lambda: _resnet_body(_Bottleneck, (3, 4, 6, 3)),
}
ARCHS = tuple(_BUILDERS)


def build_model(arch: str, num_classes: int = 10) -> ImageClassifier:
    """A freshly initialized model by name (see ``ARCHS``)."""
    if arch not in _BUILDERS:
        raise ValueError(f"unknown model architecture {arch!r}; expected one of {ARCHS}")
    body, dim = _BUILDERS[arch]()
    return ImageClassifier(body, dim, num_classes, head_scale=1 / 9 if arch == "airbench" else 1.0)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def infer_num_classes(model: nn.Module, images: torch.Tensor) -> int:
    """Number of classes = width of the model's output on one image (read, never assumed).

    An advlib model's head says it directly; any other model is run once in eval mode on
    ``images[:1]`` (float in [0,1] or uint8), and its mode is restored."""
    head = getattr(model, "head", None)
    if isinstance(head, nn.Linear):
        return int(head.out_features)
    param = next(iter(model.parameters()), None)
    x = images[:1].to(param.device if param is not None else "cpu")
    x = x.float().div(255) if x.dtype == torch.uint8 else x.float()
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise ValueError(f"the model must return logits of shape [N, num_classes], got {getattr(out, 'shape', out)}")
    return int(out.shape[1])

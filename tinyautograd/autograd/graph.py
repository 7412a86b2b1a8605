"""``autograd.graph``: the Node type for isinstance checks, as ``torch.autograd.graph``."""
from __future__ import annotations

from .engine import Node

__all__ = ["Node"]

"""Neural-network layers, losses and helpers with ``torch.nn``'s names and behaviour."""
from __future__ import annotations

from .parameter import Buffer, Parameter
from .module import Module
from .conv import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .rnn import *  # noqa: F401,F403

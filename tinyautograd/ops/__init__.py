"""tinyautograd's differentiable functions, grouped by kind. ``_bind`` attaches them to Tensor as methods and
operators, and to the recording namespace of backward formulas."""
from __future__ import annotations

from .elementwise import *  # noqa: F401,F403
from .elementwise import abs, round, pow  # noqa: F401  (shadow builtins on purpose: torch names)
from .reduction import *  # noqa: F401,F403
from .reduction import sum, max, min, all, any  # noqa: F401
from .shape import *  # noqa: F401,F403
from .indexing import *  # noqa: F401,F403
from .linalg import *  # noqa: F401,F403
from .inplace import *  # noqa: F401,F403
from . import _bind  # noqa: F401  (binds methods; must come last)

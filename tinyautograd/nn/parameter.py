"""``Parameter``: a leaf tensor that a Module registers as one of its learnable weights (``torch.nn.Parameter``)."""
from __future__ import annotations

from ..tensor import Tensor

__all__ = ["Parameter", "Buffer"]


class Parameter(Tensor):
    """A Tensor that, assigned as a Module attribute, is registered in ``parameters()`` (``torch.nn.Parameter``).

    ``Parameter(data=None, requires_grad=True)`` shares ``data``'s array (no copy); ``data=None`` gives an empty
    tensor of shape ``(0,)``.
    """

    __slots__ = ()

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True) -> "Parameter":
        if data is None:
            from ..creation import empty

            data = empty(0)
        elif not isinstance(data, Tensor):
            raise TypeError(f"Parameter(data=...) expects a Tensor, got {type(data).__name__}; wrap arrays with "
                            "tinyautograd.tensor(...) first")
        return cls._make_subclass(data, requires_grad)

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True) -> None:
        pass

    def __repr__(self) -> str:
        return "Parameter containing:\n" + Tensor.__repr__(self)

    __str__ = __repr__


class Buffer(Tensor):
    """A Tensor that, assigned as a Module attribute, is registered as a buffer (``torch.nn.Buffer``).

    ``Buffer(data, persistent=True)``: on assignment the module stores the plain tensor and records whether it
    belongs in ``state_dict``.
    """

    __slots__ = ("persistent",)

    def __new__(cls, data: Tensor, *, persistent: bool = True) -> "Buffer":
        t = cls._make_subclass(data, data.requires_grad)
        t.persistent = persistent
        return t

    def __init__(self, data: Tensor, *, persistent: bool = True) -> None:
        pass

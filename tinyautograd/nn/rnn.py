"""Recurrent layers: RNN, LSTM, GRU and their single-step cells (``torch.nn``'s names, arguments, parameter names,
gate order, initialisation and reprs).

Composed from differentiable tensor ops: each layer projects the whole input sequence with one ``linear`` (one
GEMM over ``T * N`` rows), then loops over time steps for the recurrent part. The step formulas are torch's:

- RNN:  ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``
- LSTM: gates ``i, f, g, o`` (in that order in the weights); ``c' = f*c + i*g``, ``h' = o * tanh(c')``, then
  ``h' = W_hr h'`` with ``proj_size``
- GRU:  gates ``r, z, n``; ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) * n + z * h``
"""
from __future__ import annotations

import math
import numbers
import warnings

from .. import creation
from ..ops import elementwise as E
from ..ops import shape as S
from ..ops.nn_ops import gru_cell, linear, lstm_cell
from ..tensor import Tensor
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


# ---------------------------------------------------------------------------------------------------------------
# one time step of each cell, shared by the layers and the cells; ``x_proj`` is ``W_ih x + b_ih``

def _rnn_step(x_proj: Tensor, h: Tensor, w_hh: Tensor, b_hh, relu: bool) -> Tensor:
    pre = x_proj + linear(h, w_hh, b_hh)
    return E.relu(pre) if relu else E.tanh(pre)


def _lstm_step(x_proj: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh, w_hr) -> tuple[Tensor, Tensor]:
    h, c = lstm_cell(x_proj + linear(h, w_hh, b_hh), c)  # fused on CUDA
    if w_hr is not None:
        h = linear(h, w_hr)
    return h, c


def _gru_step(x_proj: Tensor, h: Tensor, w_hh: Tensor, b_hh) -> Tensor:
    return gru_cell(x_proj, linear(h, w_hh, b_hh), h)  # fused on CUDA


# ---------------------------------------------------------------------------------------------------------------
# multi-layer recurrent layers

class RNNBase(Module):
    """What RNN, LSTM and GRU share: parameters ``weight_ih_l{k}[_reverse]``, ``weight_hh_l{k}[_reverse]``,
    ``bias_ih_l{k}[_reverse]``, ``bias_hh_l{k}[_reverse]`` (and ``weight_hr_l{k}`` with an LSTM's ``proj_size``),
    all initialised uniform in ``+-1/sqrt(hidden_size)``, and the forward over layers and directions."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device=None, dtype=None) -> None:
        super().__init__()
        if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                             "element being zeroed")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and "
                          f"num_layers={num_layers}", stacklevel=3)
        if not isinstance(hidden_size, int) or isinstance(hidden_size, bool):
            raise TypeError(f"hidden_size should be of type int, got: {type(hidden_size).__name__}")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if mode not in _GATES:
            raise ValueError(f"Unrecognized RNN mode: {mode}")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        directions = 2 if bidirectional else 1
        gate_size = _GATES[mode] * hidden_size
        out_size = proj_size if proj_size > 0 else hidden_size
        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []
        for layer in range(num_layers):
            for direction in range(directions):
                layer_input = input_size if layer == 0 else out_size * directions
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes = [("weight_ih", (gate_size, layer_input)), ("weight_hh", (gate_size, out_size))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if proj_size > 0:
                    shapes.append(("weight_hr", (proj_size, hidden_size)))
                names = []
                for base, shape in shapes:
                    setattr(self, base + suffix, Parameter(creation.empty(*shape, device=device, dtype=dtype)))
                    names.append(base + suffix)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    @property
    def all_weights(self) -> list[list[Parameter]]:
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def _layer_weights(self, layer: int, direction: int) -> tuple:
        suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        get = self._parameters.get
        return (get("weight_ih" + suffix), get("weight_hh" + suffix), get("bias_ih" + suffix),
                get("bias_hh" + suffix), get("weight_hr" + suffix))

    def _name(self) -> str:
        return "RNN" if self.mode.startswith("RNN") else self.mode

    def _check_input(self, input: Tensor) -> bool:
        if not isinstance(input, Tensor):
            raise TypeError(f"{self._name()}: input must be a Tensor, got {type(input).__name__}")
        if input.dim() not in (2, 3):
            raise ValueError(f"{self._name()}: Expected input to be 2D or 3D, got {input.dim()}D instead")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got "
                               f"{input.shape[-1]}")
        weight = self.weight_ih_l0
        if input.dtype != weight.dtype:
            raise ValueError(f"{self._name()} input dtype ({input.dtype}) does not match weight dtype "
                             f"({weight.dtype}). Convert input: input.to({weight.dtype}), or convert model: "
                             f"model.to({input.dtype})")
        return input.dim() == 3

    def _hidden(self, hx, batched: bool, batch: int, like: Tensor, size: int, what: str) -> Tensor:
        """The initial state in batched ``(layers * directions, N, size)`` form (zeros when not given)."""
        expected = (self.num_layers * (2 if self.bidirectional else 1), batch, size)
        if hx is None:
            return creation.zeros(*expected, dtype=like.dtype, device=like.device)
        if not batched:
            hx = hx.unsqueeze(1)
        if tuple(hx.shape) != expected:
            raise RuntimeError(f"Expected {what} size {expected}, got {list(hx.shape)}")
        return hx

    def _check_hx_dims(self, hxs: tuple, batched: bool) -> None:
        want = 3 if batched else 2
        if any(h is not None and h.dim() != want for h in hxs):
            kind = "batched 3-D" if batched else "unbatched 2-D"
            names = "hx" if len(hxs) == 1 else "hx and cx"
            dims = ", ".join(f"{h.dim()}-D" for h in hxs)
            raise RuntimeError(f"For {kind} input, {names} should also be {want}-D but got "
                               f"({dims}) tensor{'s' if len(hxs) > 1 else ''}")

    def forward(self, input: Tensor, hx=None):
        batched = self._check_input(input)
        lstm = self.mode == "LSTM"
        h0, c0 = (hx if hx is not None else (None, None)) if lstm else (hx, None)
        self._check_hx_dims((h0, c0) if lstm else (h0,), batched)
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        batch = x.shape[1]
        out_size = self.proj_size if self.proj_size > 0 else self.hidden_size
        h0 = self._hidden(h0, batched, batch, x, out_size, "hidden[0]" if lstm else "hidden")
        if lstm:
            c0 = self._hidden(c0, batched, batch, x, self.hidden_size, "hidden[1]")
        directions = 2 if self.bidirectional else 1
        h_last, c_last = [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                k = layer * directions + direction
                seq, h, c = self._run(x, h0[k], c0[k] if lstm else None, self._layer_weights(layer, direction),
                                      reverse=direction == 1)
                outputs.append(seq)
                h_last.append(h)
                c_last.append(c)
            x = outputs[0] if directions == 1 else S.cat(outputs, 2)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                from .functional import dropout

                x = dropout(x, self.dropout, True)
        h_n = S.stack(h_last, 0)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        if not batched:
            x, h_n = x.squeeze(1), h_n.squeeze(1)
        if not lstm:
            return x, h_n
        c_n = S.stack(c_last, 0)
        return x, (h_n, c_n if batched else c_n.squeeze(1))

    def _run(self, x: Tensor, h: Tensor, c, weights: tuple, reverse: bool):
        """One direction of one layer over the sequence ``x`` ``(T, N, input)``: ``(outputs (T, N, out), h, c)``."""
        w_ih, w_hh, b_ih, b_hh, w_hr = weights
        x_proj = S.unbind(linear(x, w_ih, b_ih), 0)
        steps = range(len(x_proj) - 1, -1, -1) if reverse else range(len(x_proj))
        outputs = [None] * len(x_proj)
        mode = self.mode
        for t in steps:
            if mode == "LSTM":
                h, c = _lstm_step(x_proj[t], h, c, w_hh, b_hh, w_hr)
            elif mode == "GRU":
                h = _gru_step(x_proj[t], h, w_hh, b_hh)
            else:
                h = _rnn_step(x_proj[t], h, w_hh, b_hh, mode == "RNN_RELU")
            outputs[t] = h
        return S.stack(outputs, 0), h, c

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


class RNN(RNNBase):
    """Elman RNN, ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` (or relu), stacked ``num_layers`` deep.

    Input ``(L, N, input_size)`` (``(N, L, input_size)`` with ``batch_first``, or unbatched ``(L, input_size)``),
    optional ``h_0`` ``(D * num_layers, N, hidden_size)``; returns ``(output (L, N, D * hidden_size), h_n)``
    (``torch.nn.RNN``).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None) -> None:
        if nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0,
                         device, dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory, gates ``i, f, g, o`` (``torch.nn.LSTM``): ``forward(input, (h_0, c_0))`` returns
    ``(output, (h_n, c_n))``; with ``proj_size > 0`` the hidden state is projected by ``weight_hr_l{k}``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device=None, dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device, dtype)


class GRU(RNNBase):
    """Gated recurrent unit, gates ``r, z, n`` with torch's ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``
    (``torch.nn.GRU``): returns ``(output, h_n)``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0,
                         device, dtype)


# ---------------------------------------------------------------------------------------------------------------
# single-step cells

class RNNCellBase(Module):
    """What the cells share: ``weight_ih`` ``(gates * hidden, input)``, ``weight_hh`` ``(gates * hidden, hidden)``,
    ``bias_ih``, ``bias_hh``, uniform in ``+-1/sqrt(hidden_size)``; input ``(N, input_size)`` or unbatched."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int, device=None,
                 dtype=None) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.weight_ih = Parameter(creation.empty(num_chunks * hidden_size, input_size, device=device, dtype=dtype))
        self.weight_hh = Parameter(creation.empty(num_chunks * hidden_size, hidden_size, device=device,
                                                  dtype=dtype))
        if bias:
            self.bias_ih = Parameter(creation.empty(num_chunks * hidden_size, device=device, dtype=dtype))
            self.bias_hh = Parameter(creation.empty(num_chunks * hidden_size, device=device, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        nonlinearity = getattr(self, "nonlinearity", "tanh")
        if nonlinearity != "tanh":
            s += f", nonlinearity={nonlinearity}"
        return s

    def _prepare(self, input: Tensor, hxs: tuple) -> tuple:
        """Checks as torch's; returns the batched input, the batched states (zeros when None) and whether the
        input was batched."""
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
        if input.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        for h in hxs:
            if h is not None and h.dim() not in (1, 2):
                raise ValueError(f"{name}: Expected hidden to be 1D or 2D, got {h.dim()}D instead")
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        if x.shape[1] != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {x.shape[1]} expected {self.input_size}")
        states = []
        for i, h in enumerate(hxs):
            if h is None:
                h = creation.zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
            elif not batched:
                h = h.unsqueeze(0)
            if h.shape[0] != x.shape[0]:
                raise RuntimeError(f"Input batch size {x.shape[0]} doesn't match hidden{i} batch size {h.shape[0]}")
            if h.shape[1] != self.hidden_size:
                raise RuntimeError(f"hidden{i} has inconsistent hidden_size: got {h.shape[1]}, expected "
                                   f"{self.hidden_size}")
            states.append(h)
        return x, states, batched


class RNNCell(RNNCellBase):
    """One Elman step, ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (or relu) (``torch.nn.RNNCell``)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}. Select from 'tanh' or 'relu'.")
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, (h,), batched = self._prepare(input, (hx,))
        h = _rnn_step(linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh,
                      self.nonlinearity == "relu")
        return h if batched else h.squeeze(0)


class LSTMCell(RNNCellBase):
    """One LSTM step: ``forward(input, (h, c))`` returns ``(h', c')`` (``torch.nn.LSTMCell``)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input: Tensor, hx: tuple | None = None) -> tuple[Tensor, Tensor]:
        x, (h, c), batched = self._prepare(input, hx if hx is not None else (None, None))
        h, c = _lstm_step(linear(x, self.weight_ih, self.bias_ih), h, c, self.weight_hh, self.bias_hh, None)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    """One GRU step (``torch.nn.GRUCell``)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, (h,), batched = self._prepare(input, (hx,))
        h = _gru_step(linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh)
        return h if batched else h.squeeze(0)

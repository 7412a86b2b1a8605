"""Random number generation: ``Generator`` and the global default generator, as in torch.

Streams differ from torch's (NumPy's PCG64 here), so seeded runs are reproducible within tinyautograd, not
bit-identical to torch; tests that compare with torch copy the random values across instead.
"""
from __future__ import annotations

import numpy as np

from .backend import device as _device_cls, normalize_device


class Generator:
    """``torch.Generator``: an independent random stream (``manual_seed``, ``seed``, ``initial_seed``,
    ``get_state``/``set_state``)."""

    def __init__(self, device="cpu") -> None:
        self.device = normalize_device(device) if device != "cpu" else _device_cls("cpu")
        self._seed = self._cuda_seed = 67280421310721
        self._rng = np.random.default_rng(self._seed)
        self._cuda_rng = None

    def manual_seed(self, seed: int) -> "Generator":
        """Seed the cpu stream and the CUDA stream (each its own, as torch's per-device generators)."""
        seed = _unsigned(seed)
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self.cuda_manual_seed(seed)
        return self

    def cuda_manual_seed(self, seed: int) -> "Generator":
        """Seed only the CUDA stream (``torch.cuda.manual_seed``); the cpu stream goes on untouched."""
        self._cuda_seed = _unsigned(seed)
        self._cuda_rng = None
        return self

    def seed(self) -> int:
        s = int(np.random.SeedSequence().entropy % (1 << 63))
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self):
        from .creation import tensor

        if self.device.type != "cpu":
            raise RuntimeError("get_state: a CUDA generator's state cannot be read (CuPy's generators do not expose "
                               "it); re-seed it with manual_seed(seed) to repeat its stream")

        state = self._rng.bit_generator.state
        words = [state["state"]["state"], state["state"]["inc"], state["has_uint32"], state["uinteger"]]
        raw = b"".join(int(w).to_bytes(16, "little") for w in words)
        return tensor(list(raw), dtype="uint8")

    def set_state(self, new_state) -> "Generator":
        if self.device.type != "cpu":
            raise RuntimeError("set_state: a CUDA generator's state cannot be set (CuPy's generators do not expose "
                               "it); re-seed it with manual_seed(seed) to repeat its stream")
        raw = bytes(int(v) for v in new_state.tolist())
        words = [int.from_bytes(raw[i:i + 16], "little") for i in range(0, 64, 16)]
        state = self._rng.bit_generator.state
        state["state"]["state"], state["state"]["inc"] = words[0], words[1]
        state["has_uint32"], state["uinteger"] = words[2], words[3]
        self._rng.bit_generator.state = state
        return self

    def numpy_rng(self) -> np.random.Generator:
        return self._rng

    def rng_for(self, xp):
        """The random stream for an array module: NumPy's on cpu, CuPy's (from the CUDA seed) on cuda. A generator
        of the user's serves only its own device, as in torch; the global one serves both."""
        want = "cpu" if xp is np else "cuda"
        if self is not default_generator and self.device.type != want:
            raise RuntimeError(f"Expected a '{want}' device type for generator but found '{self.device.type}': "
                               f"draw on the generator's device, or use a tinyautograd.Generator(device='{want}')")
        if xp is np:
            return self._rng
        if self._cuda_rng is None:
            self._cuda_rng = xp.random.default_rng(self._cuda_seed)
        return self._cuda_rng


def _unsigned(seed) -> int:
    seed = int(seed)
    return seed + (1 << 64) if seed < 0 else seed


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the global generator (and CUDA's), as ``torch.manual_seed``."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(new_state) -> None:
    default_generator.set_state(new_state)


def gen_or_default(generator) -> Generator:
    return default_generator if generator is None else generator

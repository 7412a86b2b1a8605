"""conv layers (filled in by the conv/pool/rnn work)."""
from __future__ import annotations

__all__: list[str] = []

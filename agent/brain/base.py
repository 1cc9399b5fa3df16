"""The contract both brains implement. Code owns retrieval, timestamps and paths; a brain only decides."""

from __future__ import annotations

from typing import Any, Protocol

from agent.runrecord import RunRecord
from agent.sources import ClipSource
from agent.state import Candidate
from cutpilot.storyboard import Brief, Storyboard


class Brain(Protocol):
    name: str
    model: str | None

    def understand(self, text: str, products: list[str], run: RunRecord) -> Brief:
        """Free text (zh/en) → Brief."""
        ...

    def storyboard(self, brief: Brief, run: RunRecord) -> Storyboard:
        """Brief → ordered slots (roles, target seconds, queries, filters, narration intent)."""
        ...

    def select(
        self,
        storyboard: Storyboard,
        candidates: dict[int, list[Candidate]],
        source: ClipSource,
        used: set[str],
        run: RunRecord,
    ) -> dict[int, str | None]:
        """For each slot index in `candidates`: the chosen clip id (or None = gap)."""
        ...

    def script(self, storyboard: Storyboard, slots: list[int], run: RunRecord, *, product: Any = None
               ) -> dict[int, str]:
        """Voiceover / caption lines for the given slots, grounded in `product` (a cutpilot.products.Product or
        None); code enforces the speaking budget."""
        ...

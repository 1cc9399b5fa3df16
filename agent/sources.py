"""The planner's view of the clip library: a small search protocol, and the adapter onto index.library.Library.

Keeping the nodes behind this protocol lets them be unit-tested over an in-memory source while production runs
go through the real Library (filters first, then hybrid ranking).
"""

from __future__ import annotations

from typing import Any, Protocol

from agent.state import Candidate
from cutpilot.models import ClipFormat, ClipRecord, ContentType


class ClipSource(Protocol):
    def find(
        self,
        query: str,
        *,
        content_types: list[ContentType],
        formats: list[ClipFormat],
        product: str | None,
        exclude_ids: list[str],
        limit: int,
    ) -> list[Candidate]: ...

    def get(self, clip_id: str) -> ClipRecord: ...

    def products(self) -> list[str]: ...


class LibrarySource:
    """ClipSource over index.library.Library (imported lazily: the store engineer's facade)."""

    def __init__(self, library: Any, *, writable: bool = True) -> None:
        self.library = library
        self.writable = writable  # False: generated shots are made but not written back (the eval's golden library)
        self._products: list[str] | None = None

    def find(
        self,
        query: str,
        *,
        content_types: list[ContentType],
        formats: list[ClipFormat],
        product: str | None,
        exclude_ids: list[str],
        limit: int,
    ) -> list[Candidate]:
        from index.search import SearchFilters

        filters = SearchFilters(
            product=product, content_types=list(content_types), formats=list(formats), exclude_ids=list(exclude_ids)
        )
        hits = self.library.search(query, filters, limit=limit)
        # RRF scores only rank (≈1/(60+rank)); the dense cosine says how good a match is, so gaps use that
        return [
            Candidate(clip=h.clip, score=float(h.score), relevance=float(h.scores.get("text", h.score)),
                      scores=dict(h.scores))
            for h in hits
        ]

    def get(self, clip_id: str) -> ClipRecord:
        rec: ClipRecord = self.library.get(clip_id)
        return rec

    def products(self) -> list[str]:
        if self._products is None:
            seen: dict[str, int] = {}
            for r in self.library.records():
                if r.product:
                    seen[r.product] = seen.get(r.product, 0) + 1
            self._products = sorted(seen, key=lambda p: -seen[p])
        return self._products

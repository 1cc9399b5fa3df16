"""The studio service: every page and API route calls only these methods (views out, typed errors on bad input)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO

from cutpilot.settings import Settings
from cutpilot.studio.views import AdView, BatchView, ClipView, JobView, ReviseView


class Studio:
    """One per server: one library, one job ledger, one small worker pool."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # -- library -------------------------------------------------------------------------------------------------
    def clips(self, q: str | None = None, *, product: str | None = None, content_type: str | list[str] | None = None,
              format: str | list[str] | None = None, min_dur: float | None = None, max_dur: float | None = None,
              verified: bool | None = None, generated: bool | None = None, limit: int = 60) -> list[ClipView]:
        raise NotImplementedError

    def clip(self, clip_id: str) -> ClipView:
        raise NotImplementedError

    def edit_clip(self, clip_id: str, fields: dict[str, Any]) -> ClipView:
        raise NotImplementedError

    def clip_media(self, clip_id: str) -> Path:
        raise NotImplementedError

    def clip_thumbnail(self, clip_id: str) -> Path | None:
        raise NotImplementedError

    # -- ingest and jobs -----------------------------------------------------------------------------------------
    def start_ingest(self, paths: list[Path], annotations: Path | None = None, product: str | None = None, *,
                     job_id: str | None = None) -> str:
        raise NotImplementedError

    def save_upload(self, filename: str, stream: BinaryIO, size_hint: int | None = None, *,
                    folder: str | None = None) -> Path:
        raise NotImplementedError

    def job(self, job_id: str) -> JobView:
        raise NotImplementedError

    def jobs(self, limit: int = 50) -> list[JobView]:
        raise NotImplementedError

    def events(self, job_id: str) -> AsyncIterator[JobView]:
        raise NotImplementedError

    # -- ads -----------------------------------------------------------------------------------------------------
    def create_ad(self, brief: str, *, duration_s: float | None = None, aspect: str | None = None,
                  lang: str | None = None, product: str | None = None) -> str:
        raise NotImplementedError

    def ad(self, ad_id: str) -> AdView:
        raise NotImplementedError

    def ads(self, limit: int = 50) -> list[AdView]:
        raise NotImplementedError

    def run(self, ad_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def revise(self, ad_id: str, text: str) -> ReviseView:
        raise NotImplementedError

    def swap(self, ad_id: str, index: int, clip_id: str) -> ReviseView:
        raise NotImplementedError

    def lock(self, ad_id: str, index: int, locked: bool) -> ReviseView:
        raise NotImplementedError

    def edit_line(self, ad_id: str, index: int, text: str) -> ReviseView:
        raise NotImplementedError

    def research(self, ad_id: str, index: int, query: str) -> ReviseView:
        raise NotImplementedError

    def preview(self, ad_id: str) -> Path:
        raise NotImplementedError

    def approve(self, ad_id: str) -> None:
        raise NotImplementedError

    def ad_file(self, ad_id: str, name: str) -> Path:
        raise NotImplementedError

    # -- batches -------------------------------------------------------------------------------------------------
    def create_batch(self, rows: list[dict[str, Any]], matrix: dict[str, Any] | None = None) -> str:
        raise NotImplementedError

    def batch(self, batch_id: str) -> BatchView:
        raise NotImplementedError

    def batches(self) -> list[BatchView]:
        raise NotImplementedError

    def decide_variant(self, batch_id: str, variant_id: str, approved: bool) -> BatchView:
        raise NotImplementedError

    def rerender_variant(self, batch_id: str, variant_id: str) -> BatchView:
        raise NotImplementedError

    def variant_file(self, batch_id: str, variant_id: str, name: str) -> Path:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

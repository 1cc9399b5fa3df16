"""The performance data model: one canonical daily row per (platform, ad, date), the variants cutpilot made, and
the report of an import.

Every platform's export is mapped onto `DailyRow` by `cutpilot.perf.adapters`, so credit, ranking and reports
never see a platform's column names. A metric a platform does not report is None (never 0: a missing 6 s view
count is unknown, not zero viewers). Retention checkpoints are counts of views that reached the point; adapters
turn a platform's ratios into counts with the play count and say so.

The store (`cutpilot.perf.store`, SQLite at `<home>/perf.sqlite`) offers, all taking the settings first:
`import_file(settings, path, platform) -> ImportReport`, `upsert_rows(settings, rows, platform=, file=, sha256=)
-> ImportReport`, `register_variants(settings, variants, shots)`, `daily_rows(settings, platform=None, since=None)
-> list[DailyRow]`, `variants(settings) -> list[Variant]`, `shots(settings, keys) -> list[VariantShot]`,
`latest_snapshot(settings) -> str | None`, `snapshots(settings) -> list[Snapshot]`.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, get_args

from pydantic import BaseModel, Field, model_validator

from cutpilot.variantkey import parse as parse_key

Platform = Literal["tiktok", "meta", "oceanengine", "qianchuan", "kuaishou"]
PLATFORMS: tuple[str, ...] = get_args(Platform)

# The count fields of a row, in retention order (for sums and for "what changed").
COUNT_FIELDS = ("impressions", "plays", "views_2s", "views_3s", "views_5s", "views_6s", "views_10s",
                "p25", "p50", "p75", "p100", "clicks", "conversions")
MONEY_FIELDS = ("spend", "revenue")


class DailyRow(BaseModel):
    """One ad's figures for one day on one platform (the platform's own day, as its export states it)."""

    date: dt.date
    platform: Platform
    ad_id: str
    ad_name: str = ""
    variant_key: str | None = Field(default=None, description="parsed from ad_name when not given")
    impressions: int | None = None
    spend: float | None = None
    plays: int | None = Field(default=None, description="video starts (platforms' play / play actions)")
    views_2s: int | None = None
    views_3s: int | None = None
    views_5s: int | None = Field(default=None, description="Ocean Engine / Kuaishou report 5 s; never mixed into 6 s")
    views_6s: int | None = None
    views_10s: int | None = None
    p25: int | None = Field(default=None, description="views that reached 25 % of the video")
    p50: int | None = None
    p75: int | None = None
    p100: int | None = Field(default=None, description="views that reached the end (完播)")
    avg_watch_s: float | None = Field(default=None, description="average seconds watched per play")
    clicks: int | None = None
    conversions: int | None = None
    revenue: float | None = None

    @model_validator(mode="after")
    def _key_from_name(self) -> DailyRow:
        """A row built without a key gets the one its ad name carries (the name is what the platform echoes)."""
        if self.variant_key is None and self.ad_name:
            self.variant_key = parse_key(self.ad_name)
        return self

    def checkpoints(self, duration_s: float | None = None) -> list[tuple[float, int]]:
        """(seconds into the ad, views that reached it) for every reported checkpoint, sorted by time.

        Percent checkpoints need the ad's duration to become seconds; without it only the 2/3/5/6/10 s ones are
        returned. Time 0 is the play count (everyone who started)."""
        pts: list[tuple[float, int]] = []
        if self.plays is not None:
            pts.append((0.0, self.plays))
        for t, v in ((2.0, self.views_2s), (3.0, self.views_3s), (5.0, self.views_5s), (6.0, self.views_6s),
                     (10.0, self.views_10s)):
            if v is not None and (duration_s is None or t <= duration_s):
                pts.append((t, v))
        if duration_s:
            for frac, v in ((0.25, self.p25), (0.5, self.p50), (0.75, self.p75), (1.0, self.p100)):
                if v is not None:
                    pts.append((frac * duration_s, v))
        return sorted(pts, key=lambda p: p[0])


class VariantShot(BaseModel):
    """One shot of a rendered variant: which clip was on screen from `start` to `end` seconds of the ad."""

    variant_key: str
    start: float = Field(ge=0.0)
    end: float = Field(ge=0.0)
    clip_id: str
    role: str = ""


class Variant(BaseModel):
    """A rendered test variant as the batch runner registers it (the manifest.csv row)."""

    variant_key: str
    ad_name: str
    brief: str = ""
    product: str | None = None
    audience: str | None = None
    platform: str | None = None
    duration_s: float = Field(ge=0.0)
    aspect: str = ""
    folder: str = ""
    hook_clip_id: str | None = None
    hook_source: str | None = None
    made_at: dt.datetime = Field(default_factory=lambda: dt.datetime.now(dt.UTC))


class Unmatched(BaseModel):
    """An imported ad the store could not tie to a registered variant (stored anyway; matched on registration)."""

    ad_id: str
    ad_name: str
    reason: str


class Snapshot(BaseModel):
    """One import: a ranking names the snapshot it used, so a run can be explained later."""

    id: str
    at: dt.datetime
    platform: str
    file: str
    sha256: str
    rows: int


class ImportReport(BaseModel):
    """What one `perf import` did."""

    platform: str
    file: str
    rows_read: int
    rows_upserted: int
    rows_replaced: int = Field(description="rows that already existed for (platform, ad_id, date) and were replaced")
    rows_changed: int = Field(default=0, description="replaced rows whose figures differ from the stored ones")
    dates: list[dt.date] = Field(default_factory=list)
    unmatched: list[Unmatched] = Field(default_factory=list)
    snapshot_id: str
    notes: list[str] = Field(default_factory=list, description="adapter notes, e.g. ratios converted to counts")

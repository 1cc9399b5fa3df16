"""Human annotations for ingest (`--annotations clips.jsonl|.csv`), like the practitioners' clip tables.

Each row names a `source` file and optionally `start`/`end` (then the human slicing replaces automatic
slicing for that source) plus any of content_type, format, product, transcript, description, tags,
trend_tags, language. Given fields override automatic ones and are recorded as human-verified. Everything is
validated up front so a typo fails in one line before any footage is processed.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cutpilot.errors import InputError
from cutpilot.jsonl import read_objects
from cutpilot.models import ClipFormat, ContentType, parse_content_type, parse_formats

OVERRIDE_FIELDS = ("content_type", "format", "product", "transcript", "description", "tags", "trend_tags", "language")
ALLOWED = {"source", "start", "end", "duration", *OVERRIDE_FIELDS}


def _list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("["):
            value = json.loads(s)
        else:
            for sep in ("，", "、", ";", "|"):
                s = s.replace(sep, ",")
            return [t.strip() for t in s.split(",") if t.strip()]
    return [str(v).strip() for v in value if str(v).strip()]


class Annotation(BaseModel):
    """One human row; `fields` holds only what the human actually gave."""

    model_config = ConfigDict(extra="forbid")
    source: Path
    start: float | None = Field(default=None, ge=0)
    end: float | None = Field(default=None, gt=0)
    fields: dict[str, Any] = Field(default_factory=dict)
    line: int = 0

    @field_validator("fields")
    @classmethod
    def _check(cls, v: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, val in v.items():
            if k == "content_type":
                out[k] = parse_content_type(val) if not isinstance(val, ContentType) else val
            elif k == "format":
                ready = isinstance(val, list) and all(isinstance(x, ClipFormat) for x in val)
                out[k] = val if ready else parse_formats(val)
            elif k in ("tags", "trend_tags"):
                out[k] = _list(val)
            elif k in ("product", "language"):
                out[k] = str(val).strip() or None
            else:
                out[k] = str(val)
        return out

    @property
    def has_range(self) -> bool:
        return self.start is not None and self.end is not None


def _rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise InputError(f"{path}: cannot read annotations ({e.strerror})") from e
    if suffix in (".jsonl", ".ndjson"):
        return read_objects(text.splitlines(), path.name)
    if suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        out = []
        for i, row in enumerate(reader, 2):
            if None in row:
                raise InputError(f"{path.name} line {i}: more cells than header columns")
            out.append((i, {str(k).strip(): v for k, v in row.items() if v not in (None, "")}))
        return out
    raise InputError(f"{path.name}: annotations must be .jsonl or .csv")


def _within(p: Path, roots: list[Path]) -> bool:
    return any(p == r or (r.is_dir() and p.is_relative_to(r)) for r in roots)


def resolve_source(raw: str, base: Path, roots: list[Path]) -> Path:
    """Resolve a row's `source` against the annotation file's folder, then the ingest roots; anything that
    resolves outside the ingest roots (e.g. ../../etc/passwd) is refused."""
    rel = Path(raw)
    candidates = [rel] if rel.is_absolute() else [base / rel, *[(r if r.is_dir() else r.parent) / rel for r in roots]]
    resolved = [c.resolve() for c in candidates]
    inside = [c for c in resolved if _within(c, roots)]
    if not inside:
        raise InputError(f"source {raw!r} is outside the ingest paths; refusing it (path traversal?)")
    return next((c for c in inside if c.exists()), inside[0])


def load_annotations(path: Path, roots: list[Path]) -> dict[Path, list[Annotation]]:
    """Parse and validate every row; InputError (one line, with the line number) on the first problem."""
    roots = [r.resolve() for r in roots]
    base = path.resolve().parent
    by_source: dict[Path, list[Annotation]] = defaultdict(list)
    for line, row in _rows(path):
        unknown = sorted(set(row) - ALLOWED)
        if unknown:
            allowed = ", ".join(sorted(ALLOWED))
            raise InputError(f"{path.name} line {line}: unknown field(s) {', '.join(unknown)}; allowed: {allowed}")
        if not row.get("source"):
            raise InputError(f"{path.name} line {line}: missing 'source'")
        try:
            src = resolve_source(str(row["source"]), base, roots)
        except InputError as e:
            raise InputError(f"{path.name} line {line}: {e}") from e
        fields = {k: row[k] for k in OVERRIDE_FIELDS if k in row and row[k] not in (None, "")}
        try:
            ann = Annotation(
                source=src,
                start=float(row["start"]) if row.get("start") not in (None, "") else None,
                end=float(row["end"]) if row.get("end") not in (None, "") else None,
                fields=fields, line=line,
            )
        except (ValidationError, ValueError) as e:
            msg = e.errors()[0]["msg"] if isinstance(e, ValidationError) else str(e)
            raise InputError(f"{path.name} line {line}: {msg}") from e
        except InputError as e:
            raise InputError(f"{path.name} line {line}: {e}") from e
        if (ann.start is None) != (ann.end is None):
            raise InputError(f"{path.name} line {line}: give both start and end, or neither")
        if ann.has_range and ann.end <= ann.start:  # type: ignore[operator]
            raise InputError(f"{path.name} line {line}: end ({ann.end}) must be after start ({ann.start})")
        by_source[src].append(ann)
    return dict(by_source)

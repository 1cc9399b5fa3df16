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

from cutpilot import limits as L
from cutpilot.errors import InputError
from cutpilot.jsonl import read_objects
from cutpilot.models import ClipFormat, ContentType, parse_content_type, parse_formats

OVERRIDE_FIELDS = ("content_type", "format", "product", "transcript", "description", "tags", "trend_tags", "language")
ALLOWED = {"source", "start", "end", "duration", *OVERRIDE_FIELDS}


LANGUAGE_ALIASES = {"zh-cn": "zh", "zh-hans": "zh", "zh-tw": "zh", "cmn": "zh", "chinese": "zh", "mandarin": "zh",
                    "中文": "zh", "普通话": "zh", "english": "en", "英文": "en", "en-us": "en", "en-gb": "en"}


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", bool: "true/false", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__)


def _text(field: str, value: Any, limit: int) -> str:
    if not isinstance(value, str):
        raise InputError(f"field {field!r} must be text, got {_kind(value)} {json.dumps(value, ensure_ascii=False)}")
    if len(value) > limit:
        raise InputError(f"field {field!r} is {len(value)} characters; at most {limit}")
    return value


def _list(value: Any, field: str = "tags") -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("["):
            try:
                value = json.loads(s)
            except json.JSONDecodeError as e:
                raise InputError(f"field {field!r}: bad list {s[:40]!r} ({e.msg})") from e
        else:
            for sep in ("，", "、", ";", "|"):
                s = s.replace(sep, ",")
            value = [t.strip() for t in s.split(",") if t.strip()]
    if not isinstance(value, list):
        raise InputError(f"field {field!r} must be a list of text or 'a,b' text, got {_kind(value)} "
                         f"{json.dumps(value, ensure_ascii=False)[:60]}")
    items = [_text(f"{field} item", v, L.MAX_TAG_CHARS).strip() for v in value]
    if len(items) > L.MAX_TAGS:
        raise InputError(f"field {field!r} has {len(items)} items; at most {L.MAX_TAGS}")
    return [t for t in items if t]


def language_code(value: Any) -> str | None:
    """A clip language from the allowed list (aliases such as 'zh-CN' or '中文' accepted); empty is none."""
    raw = _text("language", value, 20).strip().lower()
    if not raw:
        return None
    code = LANGUAGE_ALIASES.get(raw, raw)
    if code not in L.CLIP_LANGUAGES:
        raise InputError(f"unknown language {value!r}; use one of: {', '.join(L.CLIP_LANGUAGES)}")
    return code


def check_field(field: str, value: Any) -> Any:
    """A human-given value of an override field, type-checked: a list where text is expected (or a number where a
    name is) is an error naming the field, never coerced to a string."""
    if field == "content_type":
        if isinstance(value, ContentType):
            return value
        return parse_content_type(_text(field, value, L.MAX_NAME_CHARS))
    if field == "format":
        if isinstance(value, list) and all(isinstance(x, ClipFormat) for x in value):
            return value
        if not isinstance(value, str | list):
            raise InputError(f"field 'format' must be text or a list of text, got {_kind(value)} {value!r}")
        return parse_formats([_text("format item", v, L.MAX_NAME_CHARS) for v in value]
                             if isinstance(value, list) else value)
    if field in ("tags", "trend_tags"):
        return _list(value, field)
    if field == "product":
        return _text(field, value, L.MAX_NAME_CHARS).strip() or None
    if field == "language":
        return language_code(value)
    if field in ("transcript", "description"):
        return _text(field, value, L.MAX_TRANSCRIPT_CHARS)
    raise InputError(f"unknown field {field!r}")


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
        return {k: check_field(k, val) for k, val in v.items()}

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
        except (ValidationError, ValueError, TypeError) as e:
            msg = e.errors()[0]["msg"] if isinstance(e, ValidationError) else str(e)
            if not isinstance(e, ValidationError):
                msg = f"start and end must be numbers of seconds ({msg})"
            raise InputError(f"{path.name} line {line}: {msg}") from e
        except InputError as e:
            raise InputError(f"{path.name} line {line}: {e}") from e
        if (ann.start is None) != (ann.end is None):
            raise InputError(f"{path.name} line {line}: give both start and end, or neither")
        if ann.has_range and ann.end <= ann.start:  # type: ignore[operator]
            raise InputError(f"{path.name} line {line}: end ({ann.end}) must be after start ({ann.start})")
        by_source[src].append(ann)
    return dict(by_source)

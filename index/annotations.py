"""Human annotations for ingest (`--annotations clips.jsonl|.csv`), like the practitioners' clip tables.

Each row names a `source` file and optionally `start`/`end` (then the human slicing replaces automatic
slicing for that source) plus any of content_type, format, product, transcript, description, tags,
trend_tags, language. Given fields override automatic ones and are recorded as human-verified.

A team's own words for content type and format (优惠促单, 模特展示) are mapped onto the taxonomy by
index.teamlabels and kept beside it as the clip's team label. Every row is validated up front; a bad row (wrong
type, invalid JSON, unknown field, bad range) is reported with its line number and skipped, and every other row
applies, so one typo never costs a whole ingest.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cutpilot import limits as L
from cutpilot.errors import InputError
from cutpilot.models import ClipFormat, ContentType, parse_content_type, parse_formats

if TYPE_CHECKING:
    from index.embed import TextEmbedder
    from index.teamlabels import LabelMatch, TeamLabelMapper

OVERRIDE_FIELDS = ("content_type", "format", "product", "transcript", "description", "tags", "trend_tags", "language",
                   "garment")
ALLOWED = {"source", "start", "end", "duration", *OVERRIDE_FIELDS}
LABEL_FIELDS = ("content_type_label", "format_labels")  # set with content_type / format, never given directly


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
    if field in ("tags", "trend_tags", "format_labels"):
        return _list(value, field)
    if field == "content_type_label":
        return None if value is None else _text(field, value, L.MAX_NAME_CHARS).strip() or None
    if field == "product":
        return _text(field, value, L.MAX_NAME_CHARS).strip() or None
    if field == "language":
        return language_code(value)
    if field in ("transcript", "description"):
        return _text(field, value, L.MAX_TRANSCRIPT_CHARS)
    if field == "garment":
        from tools.garments import parse_garment

        return parse_garment(value)
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


@dataclass(frozen=True)
class AnnotationProblem:
    """One annotation line that was skipped ("failed") or applied with a note ("warning")."""

    line: int
    status: Literal["warning", "failed"]
    message: str


@dataclass
class LoadedAnnotations:
    """The rows that apply, by source, and every problem found (sorted by line)."""

    by_source: dict[Path, list[Annotation]] = field(default_factory=dict)
    problems: list[AnnotationProblem] = field(default_factory=list)

    @property
    def failed(self) -> list[AnnotationProblem]:
        return [p for p in self.problems if p.status == "failed"]


def _rows(path: Path) -> tuple[list[tuple[int, dict[str, Any]]], list[AnnotationProblem]]:
    """Numbered rows and the lines that are not rows at all (invalid JSON, too many CSV cells)."""
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise InputError(f"{path}: cannot read annotations ({e.strerror})") from e
    rows: list[tuple[int, dict[str, Any]]] = []
    bad: list[AnnotationProblem] = []
    if suffix in (".jsonl", ".ndjson"):
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                bad.append(AnnotationProblem(i, "failed", f"not valid JSON ({e.msg})"))
                continue
            if isinstance(obj, dict):
                rows.append((i, obj))
            else:
                bad.append(AnnotationProblem(i, "failed", "each line must be a JSON object"))
        return rows, bad
    if suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        for i, row in enumerate(reader, 2):
            if None in row:
                bad.append(AnnotationProblem(i, "failed", "more cells than header columns"))
                continue
            rows.append((i, {str(k).strip(): v for k, v in row.items() if v not in (None, "")}))
        return rows, bad
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


def _team_labels(fields: dict[str, Any], mapper: TeamLabelMapper) -> tuple[dict[str, Any], list[LabelMatch]]:
    """Replace a row's content_type / format words by their canonical values plus the team's words."""
    from index.teamlabels import content_type_fields, format_fields

    matches: list[LabelMatch] = []
    out = dict(fields)
    if "content_type" in out and not isinstance(out["content_type"], ContentType):
        m = mapper.content_type(_text("content_type", out["content_type"], L.MAX_NAME_CHARS))
        matches.append(m)
        out.update(content_type_fields(m))
    if "format" in out:
        value = out["format"]
        if not isinstance(value, str | list):
            raise InputError(f"field 'format' must be text or a list of text, got {_kind(value)} {value!r}")
        words = [_text("format item", v, L.MAX_TAG_CHARS) for v in value] if isinstance(value, list) else value
        fm = mapper.formats(words)
        for m in fm:
            _text("format item", m.word, L.MAX_TAG_CHARS)
        matches += fm
        out.update(format_fields(fm))
    return out, matches


def _row(line: int, row: dict[str, Any], base: Path, roots: list[Path],
         mapper: TeamLabelMapper) -> tuple[Annotation, list[LabelMatch]]:
    """One validated row; InputError (without the line number) when the row cannot apply."""
    unknown = sorted(set(row) - ALLOWED)
    if unknown:
        raise InputError(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(ALLOWED))}")
    if not row.get("source"):
        raise InputError("missing 'source'")
    if not isinstance(row["source"], str):
        raise InputError(f"field 'source' must be text, got {_kind(row['source'])}")
    src = resolve_source(row["source"], base, roots)
    fields = {k: row[k] for k in OVERRIDE_FIELDS if k in row and row[k] not in (None, "")}
    fields, matches = _team_labels(fields, mapper)
    try:
        ann = Annotation(
            source=src,
            start=float(row["start"]) if row.get("start") not in (None, "") else None,
            end=float(row["end"]) if row.get("end") not in (None, "") else None,
            fields=fields, line=line,
        )
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err.get("loc", ()))
        raise InputError(f"{where}: {err['msg']}" if where else err["msg"]) from e
    except (ValueError, TypeError) as e:
        raise InputError(f"start and end must be numbers of seconds ({e})") from e
    if (ann.start is None) != (ann.end is None):
        raise InputError("give both start and end, or neither")
    if ann.has_range and ann.end <= ann.start:  # type: ignore[operator]
        raise InputError(f"end ({ann.end}) must be after start ({ann.start})")
    return ann, matches


def _label_warnings(seen: dict[tuple[str, str], tuple[LabelMatch, list[int]]]) -> list[AnnotationProblem]:
    """One warning per team word that was not an exact name or alias, at its first line."""
    out = []
    for match, lines in seen.values():
        msg = match.warning()
        if msg is None:
            continue
        more = lines[1:]
        if more:
            shown = ", ".join(map(str, more[:5])) + (f" and {len(more) - 5} more" if len(more) > 5 else "")
            msg += f" (also line{'s' if len(more) > 1 else ''} {shown})"
        out.append(AnnotationProblem(lines[0], "warning", msg))
    return out


def load_annotations(path: Path, roots: list[Path], *, embedder: TextEmbedder | None = None,
                     strict: bool = True) -> LoadedAnnotations:
    """Parse and validate every row. Strict: InputError (one line, with the line number) on the first row that
    cannot apply. Otherwise such rows are problems ("failed", skipped) and the rest apply. Team words that are not
    exact names are problems of status "warning" either way. Without an embedder only names and aliases map."""
    from index.teamlabels import mapper_for

    mapper = mapper_for(embedder)
    roots = [r.resolve() for r in roots]
    base = path.resolve().parent
    by_source: dict[Path, list[Annotation]] = defaultdict(list)
    rows, problems = _rows(path)
    seen: dict[tuple[str, str], tuple[LabelMatch, list[int]]] = {}
    for line, row in rows:
        if strict and problems and problems[0].line < line:  # the first line that cannot apply, in file order
            break
        try:
            ann, matches = _row(line, row, base, roots, mapper)
        except InputError as e:
            if strict:
                raise InputError(f"{path.name} line {line}: {e}") from e
            problems.append(AnnotationProblem(line, "failed", " ".join(str(e).split())))
            continue
        by_source[ann.source].append(ann)
        for m in matches:
            seen.setdefault((m.kind, m.word), (m, []))[1].append(line)
    if strict and problems:
        raise InputError(f"{path.name} line {problems[0].line}: {problems[0].message}")
    problems += _label_warnings(seen)
    problems.sort(key=lambda p: (p.line, p.status != "failed"))
    return LoadedAnnotations(dict(by_source), problems)

"""The performance store: SQLite at `<home>/perf.sqlite` (WAL, one connection per call, one transaction per write).

`daily` holds one row per (platform, ad_id, date). An import upserts: platforms re-state recent days (Ocean Engine
settles same-day figures after 08:00 the next day and back-dates conversions up to 7 days), so a re-pull of the
last week replaces those rows, and the replaced figures are kept in `daily_revisions` under the snapshot that
replaced them ("what changed since the last import"). Rows whose ad name carries no variant key, or a key no
registered variant has, are stored anyway (a later registration matches them) and reported, never guessed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from cutpilot.perf.model import DailyRow, ImportReport, Snapshot, Unmatched, Variant, VariantShot

if TYPE_CHECKING:
    from cutpilot.settings import Settings

_METRICS = ("impressions", "spend", "plays", "views_2s", "views_3s", "views_5s", "views_6s", "views_10s",
            "p25", "p50", "p75", "p100", "avg_watch_s", "clicks", "conversions", "revenue")
_DAILY_COLS = ("platform", "ad_id", "date", "ad_name", "variant_key", *_METRICS)
_VARIANT_COLS = ("variant_key", "ad_name", "brief", "product", "audience", "platform", "duration_s", "aspect",
                 "folder", "hook_clip_id", "hook_source", "made_at")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS daily (
  platform TEXT NOT NULL, ad_id TEXT NOT NULL, date TEXT NOT NULL, ad_name TEXT NOT NULL DEFAULT '',
  variant_key TEXT, {", ".join(f"{m} REAL" if m in ("spend", "revenue", "avg_watch_s") else f"{m} INTEGER"
                                for m in _METRICS)},
  snapshot_id TEXT NOT NULL,
  PRIMARY KEY (platform, ad_id, date)
);
CREATE INDEX IF NOT EXISTS daily_key ON daily (variant_key);
CREATE TABLE IF NOT EXISTS daily_revisions (
  snapshot_id TEXT NOT NULL, platform TEXT NOT NULL, ad_id TEXT NOT NULL, date TEXT NOT NULL,
  old_snapshot_id TEXT, old_json TEXT NOT NULL, changed INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS revisions_snap ON daily_revisions (snapshot_id);
CREATE TABLE IF NOT EXISTS variants (
  variant_key TEXT PRIMARY KEY, ad_name TEXT NOT NULL, brief TEXT NOT NULL DEFAULT '', product TEXT,
  audience TEXT, platform TEXT, duration_s REAL NOT NULL, aspect TEXT NOT NULL DEFAULT '',
  folder TEXT NOT NULL DEFAULT '', hook_clip_id TEXT, hook_source TEXT, made_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS variant_shots (
  variant_key TEXT NOT NULL, start REAL NOT NULL, "end" REAL NOT NULL, clip_id TEXT NOT NULL,
  role TEXT NOT NULL DEFAULT '', PRIMARY KEY (variant_key, start)
);
CREATE TABLE IF NOT EXISTS clip_credit (
  clip_id TEXT NOT NULL, platform TEXT NOT NULL, snapshot_id TEXT NOT NULL, credit_json TEXT NOT NULL,
  PRIMARY KEY (clip_id, platform)
);
CREATE TABLE IF NOT EXISTS snapshots (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, at TEXT NOT NULL, platform TEXT NOT NULL,
  file TEXT NOT NULL, sha256 TEXT NOT NULL, rows INTEGER NOT NULL
);
"""


def db_path(settings: Settings) -> Path:
    """`<home>/perf.sqlite`."""
    return settings.path("perf.sqlite")


@contextlib.contextmanager
def _connect(settings: Settings, write: bool = False) -> Iterator[sqlite3.Connection]:
    """One connection per call; a write holds the database from its first statement (BEGIN IMMEDIATE) and
    commits or rolls back as a whole."""
    conn = sqlite3.connect(db_path(settings), timeout=30.0, isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.executescript(_SCHEMA)
        if not write:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()


def _row_of(r: sqlite3.Row) -> DailyRow:
    return DailyRow.model_validate({c: r[c] for c in _DAILY_COLS})


def _figures(r: sqlite3.Row | DailyRow) -> dict[str, object]:
    if isinstance(r, DailyRow):
        return {"ad_name": r.ad_name, **{m: getattr(r, m) for m in _METRICS}}
    return {"ad_name": r["ad_name"], **{m: r[m] for m in _METRICS}}


def _registered(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT variant_key FROM variants")}


def _unmatched(rows: Iterable[DailyRow], known: set[str]) -> list[Unmatched]:
    out: dict[str, Unmatched] = {}
    for r in rows:
        if r.ad_id in out:
            continue
        if r.variant_key is None:
            out[r.ad_id] = Unmatched(ad_id=r.ad_id, ad_name=r.ad_name, reason="no variant key in the ad name")
        elif r.variant_key not in known:
            out[r.ad_id] = Unmatched(ad_id=r.ad_id, ad_name=r.ad_name,
                                     reason=f"variant key {r.variant_key} is not a registered variant")
    return list(out.values())


def upsert_rows(settings: Settings, rows: list[DailyRow], *, platform: str, file: str, sha256: str,
                rows_read: int | None = None, notes: list[str] | None = None) -> ImportReport:
    """Write one import's rows and its snapshot in one transaction; existing (platform, ad_id, date) rows are
    replaced and their old figures kept as revisions of this snapshot."""
    notes = list(notes or [])
    latest: dict[tuple[str, str, dt.date], DailyRow] = {}
    for r in rows:
        latest[(r.platform, r.ad_id, r.date)] = r
    if len(latest) < len(rows):
        notes.append(f"{len(rows) - len(latest)} duplicate (ad, date) row(s) in the file: the last one of each kept")
    now = dt.datetime.now(dt.UTC)
    replaced = changed = 0
    with _connect(settings, write=True) as conn:
        cur = conn.execute("INSERT INTO snapshots (at, platform, file, sha256, rows) VALUES (?, ?, ?, ?, ?)",
                           (now.isoformat(), platform, file, sha256, len(latest)))
        seq = int(cur.lastrowid or 0)
        snap = f"S{seq:05d}-{sha256[:8]}"
        conn.execute("UPDATE snapshots SET id = ? WHERE seq = ?", (snap, seq))
        for (plat, ad_id, day), r in latest.items():
            old = conn.execute("SELECT * FROM daily WHERE platform = ? AND ad_id = ? AND date = ?",
                               (plat, ad_id, day.isoformat())).fetchone()
            if old is not None:
                replaced += 1
                before = _figures(old)
                differs = before != _figures(r)
                changed += differs
                conn.execute("INSERT INTO daily_revisions VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (snap, plat, ad_id, day.isoformat(), old["snapshot_id"], json.dumps(before),
                              int(differs)))
            values = [plat, ad_id, day.isoformat(), r.ad_name, r.variant_key, *(getattr(r, m) for m in _METRICS)]
            conn.execute(f"INSERT OR REPLACE INTO daily ({', '.join(_DAILY_COLS)}, snapshot_id) "
                         f"VALUES ({', '.join('?' * (len(_DAILY_COLS) + 1))})", (*values, snap))
        unmatched = _unmatched(latest.values(), _registered(conn))
    return ImportReport(platform=platform, file=file, rows_read=len(rows) if rows_read is None else rows_read,
                        rows_upserted=len(latest), rows_replaced=replaced, rows_changed=changed,
                        dates=sorted({d for (_, _, d) in latest}), unmatched=unmatched, snapshot_id=snap,
                        notes=notes)


def import_file(settings: Settings, path: Path, platform: str) -> ImportReport:
    """Parse a platform export (the adapter validates it whole first: a bad file writes nothing), upsert it, and
    re-credit every clip on the new snapshot (stored per clip and platform: `cutpilot clips show`)."""
    from cutpilot.perf.adapters import parse_file

    data = Path(path).read_bytes()
    parsed = parse_file(Path(path), platform, data=data)
    rep = upsert_rows(settings, parsed.rows, platform=platform, file=str(path),
                      sha256=hashlib.sha256(data).hexdigest(), rows_read=parsed.rows_read, notes=parsed.notes)
    refresh_credit(settings)
    return rep


def refresh_credit(settings: Settings) -> int:
    """Hook / hold / click credit of every clip on the latest snapshot, written per (clip, platform); returns how
    many rows were written. Pure recomputation (cutpilot.perf.credit) over the stored figures."""
    from cutpilot.perf.credit import compute_credit

    snap = latest_snapshot(settings)
    if snap is None:
        return 0
    vs, sh = variants(settings), shots(settings)
    product = {v.variant_key: v.product for v in vs}
    report = compute_credit(daily_rows(settings), sh, durations={v.variant_key: v.duration_s for v in vs
                                                                 if v.duration_s > 0},
                            groups={x.clip_id: product.get(x.variant_key) for x in sh}, snapshot=snap)
    with _connect(settings, write=True) as conn:
        conn.execute("DELETE FROM clip_credit")
        for c in report.clips:
            conn.execute("INSERT OR REPLACE INTO clip_credit (clip_id, platform, snapshot_id, credit_json) "
                         "VALUES (?, ?, ?, ?)", (c.clip_id, c.platform, snap, c.model_dump_json()))
    return len(report.clips)


def clip_credit(settings: Settings, clip_id: str) -> list[dict[str, object]]:
    """A clip's stored credit, one dict per platform (empty before any import or when no variant showed it)."""
    if not db_path(settings).is_file():
        return []
    with _connect(settings) as conn:
        rows = conn.execute("SELECT credit_json FROM clip_credit WHERE clip_id = ? ORDER BY platform",
                            (clip_id,)).fetchall()
    return [json.loads(r["credit_json"]) for r in rows]


def register_variants(settings: Settings, variants: list[Variant], shots: list[VariantShot]) -> None:
    """Upsert rendered variants and replace their shots (idempotent: registering a batch twice changes nothing)."""
    with _connect(settings, write=True) as conn:
        for v in variants:
            d = v.model_dump(mode="json")
            conn.execute(f"INSERT OR REPLACE INTO variants ({', '.join(_VARIANT_COLS)}) "
                         f"VALUES ({', '.join('?' * len(_VARIANT_COLS))})", [d[c] for c in _VARIANT_COLS])
        for key in {s.variant_key for s in shots}:
            conn.execute("DELETE FROM variant_shots WHERE variant_key = ?", (key,))
        for s in shots:
            conn.execute('INSERT OR REPLACE INTO variant_shots (variant_key, start, "end", clip_id, role) '
                         "VALUES (?, ?, ?, ?, ?)", (s.variant_key, s.start, s.end, s.clip_id, s.role))


def daily_rows(settings: Settings, platform: str | None = None, since: dt.date | None = None) -> list[DailyRow]:
    """Stored daily rows (matched or not), oldest first; `since` is inclusive."""
    sql, args = "SELECT * FROM daily WHERE 1 = 1", list[str]()
    if platform is not None:
        sql, args = sql + " AND platform = ?", [*args, platform]
    if since is not None:
        sql, args = sql + " AND date >= ?", [*args, since.isoformat()]
    with _connect(settings) as conn:
        return [_row_of(r) for r in conn.execute(sql + " ORDER BY date, platform, ad_id", args)]


def variants(settings: Settings) -> list[Variant]:
    """Every registered variant, oldest first."""
    with _connect(settings) as conn:
        return [Variant.model_validate(dict(r)) for r in conn.execute("SELECT * FROM variants ORDER BY made_at")]


def shots(settings: Settings, keys: Iterable[str] | None = None) -> list[VariantShot]:
    """The shots of the given variants (all variants when keys is None), in ad order."""
    with _connect(settings) as conn:
        rows = conn.execute('SELECT variant_key, start, "end", clip_id, role FROM variant_shots '
                            "ORDER BY variant_key, start").fetchall()
    wanted = None if keys is None else set(keys)
    return [VariantShot.model_validate(dict(r)) for r in rows if wanted is None or r["variant_key"] in wanted]


def snapshots(settings: Settings) -> list[Snapshot]:
    """Every import, oldest first."""
    with _connect(settings) as conn:
        return [Snapshot.model_validate({k: r[k] for k in ("id", "at", "platform", "file", "sha256", "rows")})
                for r in conn.execute("SELECT * FROM snapshots ORDER BY seq")]


def latest_snapshot(settings: Settings) -> str | None:
    """The id of the newest import, or None before the first one."""
    with _connect(settings) as conn:
        r = conn.execute("SELECT id FROM snapshots ORDER BY seq DESC LIMIT 1").fetchone()
    return str(r[0]) if r else None


def revisions(settings: Settings, snapshot_id: str) -> list[tuple[DailyRow, dict[str, object]]]:
    """The rows a snapshot replaced with different figures: (row as it is now, the figures it had before)."""
    with _connect(settings) as conn:
        revs = conn.execute("SELECT platform, ad_id, date, old_json FROM daily_revisions "
                            "WHERE snapshot_id = ? AND changed = 1", (snapshot_id,)).fetchall()
        out = []
        for rv in revs:
            r = conn.execute("SELECT * FROM daily WHERE platform = ? AND ad_id = ? AND date = ?",
                             (rv["platform"], rv["ad_id"], rv["date"])).fetchone()
            if r is not None:
                out.append((_row_of(r), json.loads(rv["old_json"])))
    return out


def snapshot_rows(settings: Settings, snapshot_id: str) -> list[DailyRow]:
    """The rows a snapshot last wrote (a later import of the same day takes them over)."""
    with _connect(settings) as conn:
        return [_row_of(r) for r in conn.execute("SELECT * FROM daily WHERE snapshot_id = ? ORDER BY date, ad_id",
                                                  (snapshot_id,))]


def rows_before(settings: Settings, snapshot_id: str) -> list[DailyRow]:
    """The daily table as it was just before a snapshot (exact for the latest one: later imports may have
    overwritten its rows): its new rows left out, its replaced rows as they were."""
    with _connect(settings) as conn:
        olds = {(r["platform"], r["ad_id"], r["date"]): json.loads(r["old_json"]) for r in conn.execute(
            "SELECT platform, ad_id, date, old_json FROM daily_revisions WHERE snapshot_id = ?", (snapshot_id,))}
        out = []
        for r in conn.execute("SELECT * FROM daily ORDER BY date, platform, ad_id"):
            k = (r["platform"], r["ad_id"], r["date"])
            if r["snapshot_id"] != snapshot_id:
                out.append(_row_of(r))
            elif k in olds:
                d = {c: r[c] for c in _DAILY_COLS} | olds[k]
                out.append(DailyRow.model_validate(d))
    return out

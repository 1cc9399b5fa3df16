"""Platform exports → `DailyRow`: one alias table per platform (TikTok, Meta, Ocean Engine 巨量引擎, Qianchuan
巨量千川, Kuaishou 磁力引擎), for CSV with English or Chinese headers and for the reporting APIs' JSON.

Headers match case-, space-, underscore-, BOM- and unit-insensitively ("消耗(元)" is 消耗, "Amount spent (USD)" is
amount spent). Cells take thousands separators, %, ¥/$/元 and "--" for missing. Where a platform reports a
retention point as a ratio (Kuaishou's play_3s_ratio, play_end_ratio; a console's 完播率) it becomes a count by
multiplying with the play count, and the import's notes say so; a ratio without any play count stays unknown.
Every row is parsed before anything is written: a file whose headers match no schema is one InputError naming
the missing columns.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cutpilot.errors import InputError
from cutpilot.perf.model import PLATFORMS, DailyRow
from cutpilot.variantkey import parse as parse_key

_INT_FIELDS = ("impressions", "plays", "views_2s", "views_3s", "views_5s", "views_6s", "views_10s",
               "p25", "p50", "p75", "p100", "clicks", "conversions")
_FLOAT_FIELDS = ("spend", "revenue", "avg_watch_s")
REQUIRED = ("date", "ad_id", "ad_name", "impressions")

# Aliases every platform's console uses; a platform's own names come first (tried in order, first present wins).
_COMMON: dict[str, tuple[str, ...]] = {
    "date": ("date", "day", "stat_date", "日期", "时间", "统计日期", "数据日期", "日期时间"),
    "ad_id": ("ad_id", "广告id", "计划id", "广告计划id", "创意id"),
    "ad_name": ("ad_name", "广告名称", "计划名称", "广告计划名称", "创意名称"),
    "impressions": ("impressions", "展示数", "展现数", "展示次数", "展现次数", "曝光数", "曝光次数"),
    "spend": ("spend", "cost", "消耗", "花费", "总花费", "总消耗", "成本"),
    "plays": ("plays", "video_plays", "播放数", "播放次数", "视频播放数", "视频播放次数", "总播放数"),
    "views_2s": ("2秒播放数", "2s播放数", "2秒播放次数"),
    "views_3s": ("3秒播放数", "3s播放数", "3秒播放次数"),
    "views_5s": ("5秒播放数", "5s播放数", "5秒播放次数"),
    "views_6s": ("6秒播放数", "6s播放数", "6秒播放次数"),
    "views_10s": ("10秒播放数", "10s播放数", "10秒播放次数"),
    "p25": ("25%进度播放数", "播放进度25%", "视频播放至25%"),
    "p50": ("50%进度播放数", "播放进度50%", "视频播放至50%"),
    "p75": ("75%进度播放数", "播放进度75%", "视频播放至75%"),
    "p100": ("完播数", "播放完成数", "播完数", "100%进度播放数", "视频播放至100%"),
    "avg_watch_s": ("平均单次播放时长", "平均播放时长", "平均每次播放时长"),
    "clicks": ("clicks", "点击数", "点击次数"),
    "conversions": ("conversions", "转化数", "转化次数"),
    "revenue": ("revenue", "收入", "成交金额", "转化金额"),
}
_COMMON_RATIOS: dict[str, tuple[str, ...]] = {
    "views_2s": ("2秒播放率",), "views_3s": ("3秒播放率", "3s播放率"), "views_5s": ("5秒播放率", "5s播放率"),
    "views_10s": ("10秒播放率",), "p25": ("25%进度播放率",), "p50": ("50%进度播放率",),
    "p75": ("75%进度播放率",), "p100": ("完播率", "播放完成率"),
}

_META_VIDEO = {
    "plays": "video_play_actions", "views_2s": "video_continuous_2_sec_watched_actions",
    "p25": "video_p25_watched_actions", "p50": "video_p50_watched_actions", "p75": "video_p75_watched_actions",
    "p100": "video_p100_watched_actions", "avg_watch_s": "video_avg_time_watched_actions",
}
# Meta's purchase action types, most inclusive first (omni_purchase already counts the others: never summed).
META_PURCHASES = ("omni_purchase", "purchase", "offsite_conversion.fb_pixel_purchase", "onsite_web_purchase",
                  "onsite_conversion.purchase")

_PLATFORM: dict[str, dict[str, tuple[str, ...]]] = {
    "tiktok": {
        "date": ("stat_time_day", "date", "日期", "时间"),
        "ad_id": ("ad_id", "广告id", "ad id"), "ad_name": ("ad_name", "广告名称", "ad name"),
        "impressions": ("impressions", "展示次数", "展示数", "展示量"), "clicks": ("clicks", "点击次数", "点击量"),
        "spend": ("spend", "cost", "花费", "成本", "总花费", "消耗"),
        "plays": ("video_play_actions", "video views", "视频播放次数", "视频观看次数"),
        "views_2s": ("video_watched_2s", "2-second video views", "2秒视频播放次数", "2秒视频观看次数"),
        "views_6s": ("video_watched_6s", "6-second video views", "6秒视频播放次数", "6秒视频观看次数"),
        "p25": ("video_views_p25", "video views at 25%", "视频播放至25%", "25%视频播放次数"),
        "p50": ("video_views_p50", "video views at 50%", "视频播放至50%", "50%视频播放次数"),
        "p75": ("video_views_p75", "video views at 75%", "视频播放至75%", "75%视频播放次数"),
        "p100": ("video_views_p100", "video views at 100%", "视频播放至100%", "100%视频播放次数", "完播次数"),
        "avg_watch_s": ("average_video_play", "average play time per video view", "平均播放时长",
                        "每次视频播放的平均播放时长"),
        "conversions": ("conversion", "conversions", "转化次数", "转化数"),
        "revenue": ("total_purchase_value", "complete_payment_value", "revenue", "总购买价值", "收入"),
    },
    "meta": {
        "date": ("date_start", "reporting starts", "day", "date", "报告开始日期", "开始日期", "日期"),
        "ad_id": ("ad_id", "ad id", "广告编号", "广告id"), "ad_name": ("ad_name", "ad name", "广告名称"),
        "impressions": ("impressions", "展示次数"),
        "clicks": ("clicks", "clicks (all)", "点击量（全部）", "点击量(全部)", "点击量"),
        "spend": ("spend", "amount spent", "已花费金额", "花费金额"),
        "plays": ("video_play_actions", "video plays", "视频播放量", "视频播放次数"),
        "views_2s": ("video_continuous_2_sec_watched_actions", "2-second continuous video plays",
                     "2秒连续视频播放次数", "2秒连续视频播放量"),
        "views_3s": ("actions:video_view", "3-second video plays", "3秒视频播放量", "3秒视频播放次数"),
        "p25": ("video_p25_watched_actions", "video plays at 25%", "视频播放进度达25%的次数", "视频播放至25%"),
        "p50": ("video_p50_watched_actions", "video plays at 50%", "视频播放进度达50%的次数", "视频播放至50%"),
        "p75": ("video_p75_watched_actions", "video plays at 75%", "视频播放进度达75%的次数", "视频播放至75%"),
        "p100": ("video_p100_watched_actions", "video plays at 100%", "视频播放进度达100%的次数",
                 "视频播放至100%"),
        "avg_watch_s": ("video_avg_time_watched_actions", "video average play time", "视频平均播放时长"),
        "conversions": (*(f"actions:{t}" for t in META_PURCHASES), "purchases", "购物次数", "购买次数"),
        "revenue": (*(f"action_values:{t}" for t in META_PURCHASES), "purchases conversion value",
                    "购物转化价值", "购买转化价值"),
    },
    "oceanengine": {
        "date": ("stat_datetime", "stat_time_day", "date", "时间", "日期"),
        "ad_id": ("promotion_id", "ad_id", "广告id", "计划id"),
        "ad_name": ("promotion_name", "ad_name", "广告名称", "计划名称"),
        "impressions": ("show_cnt", "展示数", "展示次数"), "clicks": ("click_cnt", "点击数", "点击次数"),
        "spend": ("stat_cost", "消耗", "花费"), "plays": ("total_play", "播放数", "总播放数"),
        "views_2s": ("play_duration_2s", "2秒播放数"), "views_3s": ("play_duration_3s", "3秒播放数"),
        "views_5s": ("play_duration_5s", "5秒播放数"), "views_10s": ("play_duration_10s", "10秒播放数"),
        "p25": ("play_25_feed_break", "25%进度播放数"), "p50": ("play_50_feed_break", "50%进度播放数"),
        "p75": ("play_75_feed_break", "75%进度播放数"),
        "p100": ("play_over", "play_100_feed_break", "播放完成数", "完播数", "播完数", "99%进度播放数"),
        "avg_watch_s": ("average_play_time_per_play", "平均单次播放时长"),
        "conversions": ("convert_cnt", "转化数"), "revenue": ("pay_amount", "attribution_pay_amount", "成交金额"),
    },
    "qianchuan": {
        "date": ("stat_datetime", "stat_time_day", "date", "日期", "时间"),
        "ad_id": ("ad_id", "计划id", "广告id"), "ad_name": ("ad_name", "计划名称", "广告名称"),
        "impressions": ("show_cnt", "展示次数", "展示数", "整体展示次数"),
        "clicks": ("click_cnt", "点击次数", "点击数", "整体点击次数"),
        "spend": ("stat_cost", "消耗", "整体消耗", "花费"),
        "plays": ("total_play", "播放数", "视频播放数", "播放次数"), "views_3s": ("play_duration_3s", "3秒播放数"),
        "p25": ("play_25_feed_break", "25%进度播放数"), "p50": ("play_50_feed_break", "50%进度播放数"),
        "p75": ("play_75_feed_break", "75%进度播放数"), "p100": ("play_over", "播放完成数", "完播数", "播完数"),
        "avg_watch_s": ("average_play_time_per_play", "平均单次播放时长"),
        "conversions": ("pay_order_count", "成交订单数", "直接成交订单数", "整体成交订单数", "支付订单数"),
        "revenue": ("pay_order_amount", "成交金额", "直接成交金额", "整体成交金额", "支付订单金额"),
    },
    "kuaishou": {
        "date": ("stat_date", "date", "日期", "时间"),
        "ad_id": ("creative_id", "unit_id", "ad_id", "创意id", "广告组id", "广告id"),
        "ad_name": ("creative_name", "unit_name", "ad_name", "创意名称", "广告组名称", "广告名称"),
        "impressions": ("show", "封面曝光数", "曝光数", "展示数"),
        "clicks": ("photo_click", "封面点击数", "bclick", "行为数", "点击数"),
        "spend": ("charge", "花费", "消耗"),
        "plays": ("played_num", "aclick", "素材曝光数", "播放数"),
        "views_3s": ("played_three_seconds", "3s播放数", "3秒播放数"),
        "views_5s": ("played_five_seconds", "5s播放数", "5秒播放数"),
        "p100": ("played_end", "完播数"),
        "conversions": ("event_pay", "付费次数", "转化数"),
        "revenue": ("event_pay_purchase_amount", "付费金额"),
    },
}
_PLATFORM_RATIOS: dict[str, dict[str, tuple[str, ...]]] = {
    "kuaishou": {"views_3s": ("play_3s_ratio", "3s播放率", "3秒播放率"),
                 "views_5s": ("play_5s_ratio", "5s播放率", "5秒播放率"),
                 "p100": ("play_end_ratio", "完播率")},
    "oceanengine": {"p100": ("play_over_rate", "完播率")},
    "qianchuan": {"p100": ("play_over_rate", "完播率")},
}
_TOTAL_MARKERS = ("合计", "总计", "汇总", "total", "summary")
_MISSING = {"", "-", "--", "—", "n/a", "na", "null", "none", "nan", "/"}


@dataclass
class Parsed:
    """An export parsed whole: its rows, how many data rows the file had, and what the adapter had to assume."""

    rows: list[DailyRow]
    rows_read: int
    notes: list[str] = field(default_factory=list)


def norm(header: str) -> str:
    """A header as matched: NFKC, lower case, without BOM, spaces, _ - : . or a trailing unit in brackets."""
    h = unicodedata.normalize("NFKC", str(header)).replace("\ufeff", "").strip().lower()
    h = re.sub(r"\s*[(\[][^()\[\]]*[)\]]\s*$", "", h) or h
    return re.sub(r"[\s_\-:.]+", "", h)


def _aliases(platform: str, fld: str, ratio: bool = False) -> list[str]:
    own = (_PLATFORM_RATIOS if ratio else _PLATFORM).get(platform, {}).get(fld, ())
    common = (_COMMON_RATIOS if ratio else _COMMON).get(fld, ())
    if platform == "meta" and not ratio and fld in _META_VIDEO:
        own = (*own, f"{_META_VIDEO[fld]}:video_view")
    out: list[str] = []
    for a in (*own, *common):
        if norm(a) not in out:
            out.append(norm(a))
    return out


def _number(value: Any, what: str, line: int) -> float | None:
    """A cell as a number: None when missing ('--', empty); '1,234', '¥12.5', '35%' (→ 35.0, flagged by caller)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        vals = [_number(v.get("value"), what, line) for v in value if isinstance(v, dict)]
        nums = [v for v in vals if v is not None]
        return sum(nums) if nums else None
    s = unicodedata.normalize("NFKC", str(value)).strip().strip("'\"=\t")
    if s.lower() in _MISSING:
        return None
    if re.fullmatch(r"\d+(:\d{2}){1,2}", s):  # Ads Manager prints watch time as m:ss
        secs = 0.0
        for part in s.split(":"):
            secs = secs * 60 + int(part)
        return secs
    s = re.sub(r"[,\s¥$€£]|元|rmb|usd|cny|秒|s$", "", s, flags=re.IGNORECASE).rstrip("%")
    try:
        return float(s)
    except ValueError:
        raise InputError(f"line {line}: {what} is not a number: {str(value)[:40]!r}") from None


def _ratio(value: Any, what: str, line: int) -> float | None:
    """A ratio cell as a fraction: '35.2%' and 35.2 are 0.352; 0.352 stays (consoles print both)."""
    x = _number(value, what, line)
    if x is None:
        return None
    pct = isinstance(value, str) and value.strip().endswith("%")
    return x / 100.0 if pct or x > 1.0 else x


_DATE_RES = (re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})"), re.compile(r"^(\d{4})(\d{2})(\d{2})(?:\D|$)"))


def _date(value: Any) -> dt.date | None:
    s = unicodedata.normalize("NFKC", str(value or "")).strip()
    for rx in _DATE_RES:
        m = rx.match(s)
        if m:
            try:
                return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                return None
    return None


def _ad_id(value: Any) -> str:
    """An id as text; '1.78e+18'-style Excel damage is refused by the caller, '123.0' and quote guards cleaned."""
    s = unicodedata.normalize("NFKC", str(value if value is not None else "")).strip().strip("'\"=\t ")
    return s[:-2] if re.fullmatch(r"\d+\.0", s) else s


def _flatten(rec: dict[str, Any]) -> dict[str, Any]:
    """TikTok's API nests {dimensions: {...}, metrics: {...}}; Meta's actions lists become `actions:<type>` keys."""
    out: dict[str, Any] = {}
    for k, v in rec.items():
        if isinstance(v, dict) and k in ("dimensions", "metrics"):
            out.update(v)
        else:
            out[k] = v
    for k in ("actions", "action_values"):
        if isinstance(out.get(k), list):
            for a in out[k]:
                if isinstance(a, dict) and "action_type" in a:
                    out[f"{k}:{a['action_type']}"] = a.get("value")
    return out


def _json_records(data: Any) -> list[dict[str, Any]]:
    """The row list of an API response: a list, {"data": {"list": [...]}}, {"data": [...]} (and a few kin)."""
    node = data
    for _ in range(3):
        if isinstance(node, list):
            break
        if not isinstance(node, dict):
            raise InputError("JSON export: expected a list of rows, {\"data\": {\"list\": [...]}} or {\"data\": [...]}")
        for k in ("data", "list", "details", "rows", "items", "results"):
            if k in node and isinstance(node[k], list | dict):
                node = node[k]
                break
        else:
            raise InputError("JSON export: no row list under data / list / details / rows")
    if not isinstance(node, list) or not all(isinstance(r, dict) for r in node):
        raise InputError("JSON export: the row list must hold objects")
    return [_flatten(r) for r in node]


def _csv_records(text: str) -> list[dict[str, Any]]:
    lines = text.splitlines()
    # Consoles sometimes put a title or date-range line above the header: start at the first line with a delimiter.
    start = next((i for i, ln in enumerate(lines[:10]) if ln.count(",") + ln.count("\t") + ln.count(";") >= 2), 0)
    body = "\n".join(lines[start:])
    try:
        dialect: Any = csv.Sniffer().sniff(body[:4096], delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(body), dialect=dialect)
    return [{k: v for k, v in r.items() if k is not None} for r in reader]


def _decode(data: bytes) -> str:
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise InputError("export is neither UTF-8 nor GB18030 text (save it as CSV or JSON)")


def read_records(path: Path, data: bytes | None = None) -> list[dict[str, Any]]:
    """A file's rows as dicts: JSON (by content) or CSV/TSV (UTF-8 with or without BOM, or GB18030)."""
    raw = path.read_bytes() if data is None else data
    if raw[:2] == b"PK":
        raise InputError(f"{path.name} is a spreadsheet (xlsx); export it as CSV from the console")
    text = _decode(raw)
    if text.lstrip()[:1] in ("[", "{"):
        try:
            return _json_records(json.loads(text))
        except json.JSONDecodeError as e:
            raise InputError(f"{path.name}: invalid JSON at line {e.lineno}: {e.msg}") from None
    return _csv_records(text)


def _is_total(rec: dict[str, Any]) -> bool:
    return any(isinstance(v, str) and v.strip().lower() in _TOTAL_MARKERS for v in rec.values())


def parse_records(records: Iterable[dict[str, Any]], platform: str, source: str = "export") -> Parsed:
    """Map one platform's rows onto DailyRow; the whole file is validated before anything is returned."""
    if platform not in PLATFORMS:
        raise InputError(f"unknown platform {platform!r} (one of {', '.join(PLATFORMS)})")
    recs = list(records)
    headers: dict[str, str] = {}
    for r in recs:
        for k in r:
            headers.setdefault(norm(k), k)
    fields = [*REQUIRED, *(f for f in (*_INT_FIELDS, *_FLOAT_FIELDS) if f not in REQUIRED)]
    cols: dict[str, str] = {}
    ratios: dict[str, str] = {}
    for f in fields:
        hit = next((headers[a] for a in _aliases(platform, f) if a in headers), None)
        if hit is not None:
            cols[f] = hit
        if f in _COMMON_RATIOS or f in _PLATFORM_RATIOS.get(platform, {}):
            rhit = next((headers[a] for a in _aliases(platform, f, ratio=True) if a in headers), None)
            if rhit is not None:
                ratios[f] = rhit
    missing = [f for f in REQUIRED if f not in cols]
    if missing:
        want = "; ".join(f"{f} ({' | '.join(_PLATFORM[platform].get(f, _COMMON[f])[:3])})" for f in missing)
        raise InputError(f"{source}: headers match no {platform} export schema; missing {want}")
    notes: list[str] = []
    converted = [f for f in ratios if f not in cols]
    if converted:
        notes.append("ratios converted to counts with the play count: "
                     + ", ".join(f"{ratios[f]} → {f}" for f in converted))
    rows: list[DailyRow] = []
    skipped = 0
    no_plays = False
    for i, rec in enumerate(recs, start=2):
        day = _date(rec.get(cols["date"]))
        ad_id = _ad_id(rec.get(cols["ad_id"]))
        if day is None or not ad_id:
            if _is_total(rec) or not any(str(v or "").strip() for v in rec.values()):
                skipped += 1
                continue
            what = "date" if day is None else "ad_id"
            raise InputError(f"{source} line {i}: bad {what} {str(rec.get(cols[what]))[:40]!r}")
        if re.fullmatch(r"\d(\.\d+)?[eE]\+?\d+", ad_id):
            raise InputError(f"{source} line {i}: ad id {ad_id!r} was rounded by a spreadsheet; re-export the CSV")
        vals: dict[str, Any] = {}
        for f in (*_INT_FIELDS, *_FLOAT_FIELDS):
            if f in cols:
                x = _number(rec.get(cols[f]), cols[f], i)
                vals[f] = None if x is None else (round(x) if f in _INT_FIELDS else x)
        if vals.get("plays") is None and "views_3s" in ratios and vals.get("views_3s") is not None:
            r3 = _ratio(rec.get(ratios["views_3s"]), ratios["views_3s"], i)
            if r3:
                vals["plays"] = round(vals["views_3s"] / r3)
        for f, col in ratios.items():
            frac = _ratio(rec.get(col), col, i)
            if frac is None:
                continue
            if vals.get("plays") is None:
                no_plays = no_plays or vals.get(f) is None
                continue
            if vals.get(f) is None:
                vals[f] = round(frac * vals["plays"])
        if platform == "meta":  # the API leaves out action types that did not happen: a listed day has 0 of them
            for f, k in (("conversions", "actions"), ("revenue", "action_values")):
                if vals.get(f) is None and isinstance(rec.get(k), list):
                    vals[f] = 0 if f == "conversions" else 0.0
        name = str(rec.get(cols["ad_name"]) or "").strip()
        rows.append(DailyRow(date=day, platform=platform, ad_id=ad_id, ad_name=name,  # type: ignore[arg-type]
                             variant_key=parse_key(name), **vals))
    if "plays" not in cols and "views_3s" in ratios and "views_3s" in cols:
        notes.append("no play-count column: plays = 3 s plays / 3 s play rate")
    if no_plays:
        notes.append("some ratio cells had no play count to convert with and stay unknown")
    if skipped:
        notes.append(f"{skipped} total / blank row(s) skipped")
    return Parsed(rows=rows, rows_read=len(recs), notes=notes)


def parse_file(path: Path, platform: str, data: bytes | None = None) -> Parsed:
    """Read and map one export file (CSV or JSON)."""
    return parse_records(read_records(path, data), platform, source=path.name)

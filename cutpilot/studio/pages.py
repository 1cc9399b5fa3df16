"""Studio pages: server-rendered Jinja2 over the Studio's view models, HTMX for partial updates.

Every route here calls only `Studio` methods. A full page answers a bad input with the page and a one-line error;
an HTMX partial answers with the same partial and the error inline (422, which the page swaps in like a 200).
Clip text is data: templates autoescape and never mark it safe.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates

from cutpilot.errors import CutpilotError, InputError, NotFoundError
from cutpilot.models import ClipFormat, ContentType
from cutpilot.studio.service import Studio
from cutpilot.studio.views import AdView, BatchView, ClipView, JobView, ReviseView

TEMPLATES = Path(__file__).parent / "templates"
ASPECTS = ("9:16", "1:1", "4:5", "16:9")
FILE_LABELS = {"ad.mp4": "MP4", "captions.srt": "SRT", "timeline.otio": "OTIO", "storyboard.json": "Storyboard",
               "timeline.json": "Timeline", "run.json": "Run record", "preview.mp4": "Preview"}

router = APIRouter()
templates = Jinja2Templates(directory=str(TEMPLATES))


def _status_class(status: str) -> str:
    return {"done": "ok", "review": "accent", "running": "accent", "planning": "accent", "rendering": "accent",
            "failed": "err", "skipped": "warn"}.get(status, "")


def _file_label(name: str) -> str:
    return FILE_LABELS.get(name, name)


def _files_of(job: JobView) -> list[tuple[str, float, str]]:
    """Per-file rows of a finished ingest job (name, fraction, note), from its result's file statuses."""
    files = job.result.get("rows") or job.result.get("files") if isinstance(job.result, dict) else None
    rows: list[tuple[str, float, str]] = []
    if isinstance(files, dict):
        files = [{"name": k, **(v if isinstance(v, dict) else {"progress": v})} for k, v in files.items()]
    if not isinstance(files, list):
        return rows
    for f in files[:50]:
        if not isinstance(f, dict):
            continue
        name = str(f.get("name") or f.get("file") or f.get("path") or "?")
        try:
            frac = min(1.0, max(0.0, float(f.get("progress", 0.0 if f.get("status") == "failed" else 1.0))))
        except (TypeError, ValueError):
            frac = 0.0
        note = " · ".join(str(x) for x in (f.get("status"), f"{f['clips']} clips" if f.get("clips") else None,
                                             f.get("message")) if x)
        rows.append((Path(name).name, frac, note))
    return rows


templates.env.globals.update(status_class=_status_class, file_label=_file_label, files_of=_files_of)


def _studio(request: Request) -> Studio:
    studio: Studio = request.app.state.studio
    return studio


def _page(request: Request, name: str, ctx: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    """Render a template with what every page needs (CSRF token for htmx headers and plain forms)."""
    base = {"csrf_token": getattr(request.state, "csrf_token", ""), "nav": None, "error": None}
    return templates.TemplateResponse(request, name, {**base, **ctx}, status_code=status_code)


def _is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())[:300] or e.__class__.__name__


def _opt_float(v: str | None, what: str) -> float | None:
    if v is None or not v.strip():
        return None
    try:
        return float(v)
    except ValueError:
        raise InputError(f"{what} must be a number (got {v!r})") from None


def _opt_bool(v: str | None) -> bool | None:
    return {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}.get((v or "").lower())


def _opt_str(v: str | None) -> str | None:
    return v.strip() if v and v.strip() else None


@router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/library", status_code=303)


# -- library ----------------------------------------------------------------------------------------------------
def _filters(request: Request) -> dict[str, Any]:
    p = request.query_params
    f: dict[str, Any] = {k: _opt_str(p.get(k)) for k in ("q", "product", "content_type", "format", "verified",
                                                           "generated")}
    f["min_dur"] = _opt_float(p.get("min_dur"), "min duration")
    f["max_dur"] = _opt_float(p.get("max_dur"), "max duration")
    f["any"] = any(v is not None for k, v in f.items() if k != "q")
    return f


def _search(studio: Studio, f: dict[str, Any]) -> list[ClipView]:
    return studio.clips(f["q"], product=f["product"], content_type=f["content_type"], format=f["format"],
                        min_dur=f["min_dur"], max_dur=f["max_dur"], verified=_opt_bool(f["verified"]),
                        generated=_opt_bool(f["generated"]))


def _facets(studio: Studio) -> dict[str, list[str]]:
    """Filter choices: the taxonomy plus the team's own labels and the products found in the library."""
    try:
        every = studio.clips(limit=1000)
    except CutpilotError:
        every = []
    products = sorted({c.product for c in every if c.product})
    content_types = [c.value for c in ContentType]
    content_types += sorted({c.content_type_label for c in every if c.content_type_label} - set(content_types))
    formats = [f.value for f in ClipFormat]
    formats += sorted({lab for c in every for lab in c.format_labels} - set(formats))
    return {"products": products, "content_types": content_types, "formats": formats}


@router.get("/library", response_class=HTMLResponse)
def library(request: Request) -> HTMLResponse:
    studio = _studio(request)
    error = None
    try:
        f = _filters(request)
        clips = _search(studio, f)
    except (InputError, NotFoundError) as e:
        f = {"q": request.query_params.get("q"), "any": True}
        clips, error = [], _one_line(e)
    try:
        jobs = [j for j in studio.jobs(limit=10) if j.kind == "ingest"][:5]
    except CutpilotError:
        jobs = []
    return _page(request, "library.html", {"nav": "library", "clips": clips, "f": f, "facets": _facets(studio),
                                           "jobs": jobs, "error": error})


@router.get("/library/grid", response_class=HTMLResponse)
def library_grid(request: Request) -> HTMLResponse:
    try:
        f = _filters(request)
        clips = _search(_studio(request), f)
    except (InputError, NotFoundError) as e:
        return HTMLResponse(f'<p class="error" role="alert">{_esc(_one_line(e))}</p>', status_code=422)
    return _page(request, "partials/clips.html", {"clips": clips, "f": f})


def _esc(s: str) -> str:
    from markupsafe import escape

    return str(escape(s))


def _job_response(request: Request, job_id: str, status_code: int = 200) -> HTMLResponse:
    job = _studio(request).job(job_id)
    resp = _page(request, "partials/job.html", {"job": job}, status_code=status_code)
    if job.status == "done" and job.kind == "ingest":
        resp.headers["HX-Trigger"] = "clips-changed"
    return resp


def _inline_error(e: Exception) -> HTMLResponse:
    return HTMLResponse(f'<p class="error" role="alert">{_esc(_one_line(e))}</p>', status_code=422)


@router.post("/library/upload", response_class=HTMLResponse)
def library_upload(request: Request, files: list[UploadFile] = File(default=[]),
                   annotations: UploadFile | None = File(default=None),
                   product: str = Form(default="")) -> HTMLResponse:
    studio = _studio(request)
    files = [f for f in files if f.filename]
    if not files:
        return _inline_error(InputError("choose at least one video or photo to upload"))
    folder = uuid.uuid4().hex[:12]
    try:
        paths = [studio.save_upload(f.filename or "upload", f.file, f.size, folder=folder) for f in files]
        ann = None
        if annotations is not None and annotations.filename:
            ann = studio.save_upload(annotations.filename, annotations.file, annotations.size, folder=folder)
        job_id = studio.start_ingest(paths, annotations=ann, product=_opt_str(product))
    except (InputError, NotFoundError) as e:
        return _inline_error(e)
    return _job_response(request, job_id)


@router.post("/library/ingest", response_class=HTMLResponse)
def library_ingest(request: Request, paths: str = Form(default=""), annotations: str = Form(default=""),
                   product: str = Form(default="")) -> HTMLResponse:
    items = [Path(p.strip()).expanduser() for p in paths.splitlines() if p.strip()]
    if not items:
        return _inline_error(InputError("give at least one path (one per line)"))
    ann = Path(annotations.strip()).expanduser() if annotations.strip() else None
    try:
        job_id = _studio(request).start_ingest(items, annotations=ann, product=_opt_str(product))
    except (InputError, NotFoundError) as e:
        return _inline_error(e)
    return _job_response(request, job_id)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_partial(request: Request, job_id: str) -> HTMLResponse:
    try:
        return _job_response(request, job_id)
    except NotFoundError as e:
        return _inline_error(e)


@router.get("/library/clips/{clip_id}", response_class=HTMLResponse)
def clip_card(request: Request, clip_id: str) -> HTMLResponse:
    try:
        clip = _studio(request).clip(clip_id)
    except (InputError, NotFoundError) as e:
        return _inline_error(e)
    return _page(request, "partials/clip.html", {"clip": clip})


@router.get("/library/clips/{clip_id}/edit", response_class=HTMLResponse)
def clip_edit_form(request: Request, clip_id: str) -> HTMLResponse:
    try:
        clip = _studio(request).clip(clip_id)
    except (InputError, NotFoundError) as e:
        return _inline_error(e)
    return _page(request, "partials/clip_edit.html", {"clip": clip, "content_types": [c.value for c in ContentType]})


def _shown(clip: ClipView) -> dict[str, str]:
    """The edit form's initial values, so only what the person changed is saved (and marked human-verified)."""
    return {"content_type": clip.content_type_label or clip.content_type,
            "format": ", ".join(clip.format_labels or clip.format), "product": clip.product or "",
            "description": clip.description, "transcript": clip.transcript, "tags": ", ".join(clip.tags),
            "trend_tags": ", ".join(clip.trend_tags), "language": clip.language or ""}


def _norm(s: str) -> str:
    return " ".join(s.replace("\r\n", "\n").split())


@router.post("/library/clips/{clip_id}", response_class=HTMLResponse)
def clip_save(request: Request, clip_id: str, content_type: str | None = Form(default=None),
              format: str | None = Form(default=None), product: str | None = Form(default=None),
              description: str | None = Form(default=None), transcript: str | None = Form(default=None),
              tags: str | None = Form(default=None), trend_tags: str | None = Form(default=None),
              language: str | None = Form(default=None)) -> HTMLResponse:
    studio = _studio(request)
    form = {"content_type": content_type, "format": format, "product": product, "description": description,
            "transcript": transcript, "tags": tags, "trend_tags": trend_tags, "language": language}
    try:
        clip = studio.clip(clip_id)
        before = _shown(clip)
        fields = {k: v for k, v in form.items() if v is not None and _norm(v) != _norm(before[k])}
        if fields:
            clip = studio.edit_clip(clip_id, fields)
    except NotFoundError as e:
        return _inline_error(e)
    except InputError as e:
        return _page(request, "partials/clip_edit.html",
                     {"clip": clip, "error": _one_line(e), "content_types": [c.value for c in ContentType]},
                     status_code=422)
    return _page(request, "partials/clip.html", {"clip": clip})


# -- make -------------------------------------------------------------------------------------------------------
@router.get("/make", response_class=HTMLResponse)
def make(request: Request) -> HTMLResponse:
    return _make_page(request, {}, None)


def _make_page(request: Request, form: dict[str, Any], error: str | None, status_code: int = 200) -> HTMLResponse:
    studio = _studio(request)
    try:
        ads = studio.ads(limit=20)
    except CutpilotError:
        ads = []
    return _page(request, "make.html", {"nav": "make", "form": form, "error": error, "ads": ads,
                                        "products": _facets(studio)["products"]}, status_code=status_code)


@router.post("/make", response_model=None)
def make_submit(request: Request, brief: str = Form(default=""), duration_s: str = Form(default=""),
                aspect: str = Form(default=""), lang: str = Form(default=""),
                product: str = Form(default="")) -> Response:
    form = {"brief": brief, "duration_s": duration_s, "aspect": aspect, "lang": lang, "product": product}
    try:
        if not brief.strip():
            raise InputError("write a brief first (中文 or English)")
        ad_id = _studio(request).create_ad(brief, duration_s=_opt_float(duration_s, "length"),
                                           aspect=_opt_str(aspect), lang=_opt_str(lang),
                                           product=_opt_str(product))
    except InputError as e:
        return _make_page(request, form, _one_line(e), status_code=422)
    return RedirectResponse(f"/make/{ad_id}", status_code=303)


def _version(ad: AdView) -> str:
    """A key that changes whenever the storyboard does, so the page asks for a fresh preview (and only then)."""
    raw = json.dumps(ad.storyboard or {}, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha1(raw.encode("utf-8")).hexdigest()[:12]


def _ad_ctx(request: Request, ad: AdView, flash: str | None = None, flash_ok: bool = True) -> dict[str, Any]:
    studio = _studio(request)
    job = None
    if ad.job_id and ad.status in ("planning", "rendering"):
        try:
            job = studio.job(ad.job_id)
        except NotFoundError:
            job = None
    version = _version(ad)
    preview_src = f"/make/{ad.ad_id}/preview.mp4?v={version}" if ad.shots else None
    if flash and any(m.role == "studio" and m.text.startswith(flash) for m in ad.messages[-2:]):
        flash = None  # the chat already shows the answer
    return {"nav": "make", "ad": ad, "job": job, "version": version, "preview_src": preview_src,
            "flash": flash, "flash_ok": flash_ok, "inline": True}


def _current(studio: Studio, ad_id: str) -> AdView:
    """The ad as the page shows it: while the planner or the final render works on it, only its status and
    progress (shots and their alternates search the library, which the working planner holds)."""
    ad = studio.ad(ad_id, shots=False)
    return ad if ad.status in ("planning", "rendering") else studio.ad(ad_id)


@router.get("/make/{ad_id}", response_class=HTMLResponse)
def make_ad(request: Request, ad_id: str) -> HTMLResponse:
    try:
        ad = _current(_studio(request), ad_id)
    except (InputError, NotFoundError) as e:
        return _make_page(request, {}, _one_line(e), status_code=404)
    return _page(request, "make_ad.html", _ad_ctx(request, ad))


@router.get("/make/{ad_id}/panel", response_class=HTMLResponse)
def make_panel(request: Request, ad_id: str) -> HTMLResponse:
    try:
        ad = _current(_studio(request), ad_id)
    except (InputError, NotFoundError) as e:
        return _inline_error(e)
    return _page(request, "partials/ad.html", _ad_ctx(request, ad))


def _act(request: Request, ad_id: str, action: Callable[[Studio], ReviseView | None]) -> HTMLResponse:
    """Run one review action and answer with the whole ad panel: applied, or the reason it was not."""
    studio = _studio(request)
    flash, ok, code = None, True, 200
    try:
        rv = action(studio)
        if rv is not None:
            flash, ok = rv.message or ("Applied." if rv.applied else "Not applied."), rv.applied
    except InputError as e:
        flash, ok, code = _one_line(e), False, 422
    try:
        ad = _current(studio, ad_id)
    except (InputError, NotFoundError) as e:
        return _inline_error(e)
    return _page(request, "partials/ad.html", _ad_ctx(request, ad, flash, ok), status_code=code)


@router.post("/make/{ad_id}/revise", response_class=HTMLResponse)
def make_revise(request: Request, ad_id: str, text: str = Form(default="")) -> HTMLResponse:
    def revise(s: Studio) -> ReviseView:
        if not text.strip():
            raise InputError("type what to change first")
        return s.revise(ad_id, text.strip())

    return _act(request, ad_id, revise)


@router.post("/make/{ad_id}/shots/{index}/swap", response_class=HTMLResponse)
def make_swap(request: Request, ad_id: str, index: int, clip_id: str = Form(default="")) -> HTMLResponse:
    return _act(request, ad_id, lambda s: s.swap(ad_id, index, clip_id))


@router.post("/make/{ad_id}/shots/{index}/lock", response_class=HTMLResponse)
def make_lock(request: Request, ad_id: str, index: int, locked: str = Form(default="true")) -> HTMLResponse:
    return _act(request, ad_id, lambda s: s.lock(ad_id, index, _opt_bool(locked) is not False))


@router.post("/make/{ad_id}/shots/{index}/line", response_class=HTMLResponse)
def make_line(request: Request, ad_id: str, index: int, text: str = Form(default="")) -> HTMLResponse:
    return _act(request, ad_id, lambda s: s.edit_line(ad_id, index, text))


@router.post("/make/{ad_id}/shots/{index}/research", response_class=HTMLResponse)
def make_research(request: Request, ad_id: str, index: int, query: str = Form(default="")) -> HTMLResponse:
    return _act(request, ad_id, lambda s: s.research(ad_id, index, query))


@router.post("/make/{ad_id}/approve", response_class=HTMLResponse)
def make_approve(request: Request, ad_id: str) -> HTMLResponse:
    return _act(request, ad_id, lambda s: s.approve(ad_id))


@router.get("/make/{ad_id}/preview.mp4", response_model=None)
def make_preview(request: Request, ad_id: str) -> Response:
    try:
        path = _studio(request).preview(ad_id)
    except NotFoundError as e:
        return Response(_one_line(e), status_code=404, media_type="text/plain")
    except InputError as e:
        return Response(_one_line(e), status_code=409, media_type="text/plain")
    return FileResponse(path, media_type="video/mp4", headers={"Cache-Control": "private, max-age=3600"})


# -- batch ------------------------------------------------------------------------------------------------------
def _axis(v: str) -> list[str]:
    return [x.strip() for x in re.split(r"[|;,，、]", v) if x.strip()]


@router.get("/batch", response_class=HTMLResponse)
def batch_home(request: Request) -> HTMLResponse:
    return _batch_page(request, {}, None)


def _batch_page(request: Request, form: dict[str, Any], error: str | None, status_code: int = 200) -> HTMLResponse:
    try:
        batches = _studio(request).batches()
    except CutpilotError:
        batches = []
    return _page(request, "batch.html", {"nav": "batch", "form": form, "error": error, "batches": batches},
                 status_code=status_code)


def _briefs_rows(studio: Studio, upload: UploadFile) -> list[dict[str, Any]]:
    """The rows of an uploaded briefs file, read by the same loader as `cutpilot batch`."""
    from agent.batch import load_rows

    path = studio.save_upload(upload.filename or "briefs.yaml", upload.file, upload.size,
                              folder=uuid.uuid4().hex[:12])
    return [r.model_dump(exclude_defaults=True) for r in load_rows(path)]


@router.post("/batch", response_model=None)
def batch_submit(request: Request, briefs_file: UploadFile | None = File(default=None), brief: str = Form(default=""),
                 audiences: str = Form(default=""), aspects: str = Form(default=""),
                 lengths: str = Form(default="")) -> Response:
    studio = _studio(request)
    form = {"brief": brief, "audiences": audiences, "aspects": aspects, "lengths": lengths}
    try:
        rows: list[dict[str, Any]] = []
        if briefs_file is not None and briefs_file.filename:
            rows = _briefs_rows(studio, briefs_file)
        if brief.strip():
            rows.append({"brief": brief.strip()})
        if not rows:
            raise InputError("upload a briefs file or write a base brief for the matrix")
        axes = _axis(aspects)
        matrix: dict[str, Any] = {
            "audiences": _axis(audiences),
            "aspects": [a for a in axes if a in ASPECTS],
            "channels": [a for a in axes if a not in ASPECTS],
            "durations": [_opt_float(x, "length") for x in _axis(lengths)],
        }
        matrix = {k: v for k, v in matrix.items() if v}
        batch_id = studio.create_batch(rows, matrix or None)
    except InputError as e:
        return _batch_page(request, form, _one_line(e), status_code=422)
    return RedirectResponse(f"/batch/{batch_id}", status_code=303)


def _batch_ctx(request: Request, batch: BatchView, flash: str | None = None, ok: bool = True) -> dict[str, Any]:
    job = None
    if batch.job_id and batch.status in ("queued", "running"):
        try:
            job = _studio(request).job(batch.job_id)
        except NotFoundError:
            job = None
    return {"nav": "batch", "batch": batch, "job": job, "flash": flash, "flash_ok": ok, "inline": True}


@router.get("/batch/{batch_id}", response_class=HTMLResponse)
def batch_detail(request: Request, batch_id: str) -> HTMLResponse:
    try:
        batch = _studio(request).batch(batch_id)
    except (InputError, NotFoundError) as e:
        return _batch_page(request, {}, _one_line(e), status_code=404)
    return _page(request, "batch_detail.html", _batch_ctx(request, batch))


@router.get("/batch/{batch_id}/panel", response_class=HTMLResponse)
def batch_panel(request: Request, batch_id: str) -> HTMLResponse:
    try:
        batch = _studio(request).batch(batch_id)
    except (InputError, NotFoundError) as e:
        return _inline_error(e)
    return _page(request, "partials/batch.html", _batch_ctx(request, batch))


@router.post("/batch/{batch_id}/variants/{variant_id}/decide", response_class=HTMLResponse)
def batch_decide(request: Request, batch_id: str, variant_id: str,
                 approved: str = Form(default="true")) -> HTMLResponse:
    studio = _studio(request)
    try:
        batch = studio.decide_variant(batch_id, variant_id, _opt_bool(approved) is not False)
    except (InputError, NotFoundError) as e:
        return _inline_error(e)
    return _page(request, "partials/batch.html", _batch_ctx(request, batch))


@router.post("/batch/{batch_id}/variants/{variant_id}/rerender", response_class=HTMLResponse)
def batch_rerender(request: Request, batch_id: str, variant_id: str) -> HTMLResponse:
    try:
        batch = _studio(request).rerender_variant(batch_id, variant_id)
    except (InputError, NotFoundError) as e:
        return _inline_error(e)
    return _page(request, "partials/batch.html", _batch_ctx(request, batch))


@router.get("/batch/{batch_id}/download", response_model=None)
def batch_download(request: Request, batch_id: str) -> Response:
    """Every finished variant's files in one zip (approved ones only, when any were approved)."""
    studio = _studio(request)
    try:
        batch = studio.batch(batch_id)
    except (InputError, NotFoundError) as e:
        return Response(_one_line(e), status_code=404, media_type="text/plain")
    done = [v for v in batch.variants if v.status == "done"]
    if any(v.approved for v in done):
        done = [v for v in done if v.approved]
    tmp = tempfile.TemporaryFile()  # noqa: SIM115 (the response stream closes it)
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
        for v in done:
            folder = re.sub(r"[^\w.-]+", "_", v.name or v.variant_id)[:80] or v.variant_id
            for name in v.files:
                try:
                    z.write(studio.variant_file(batch_id, v.variant_id, name), f"{folder}/{name}")
                except (InputError, NotFoundError, OSError):
                    continue
    tmp.seek(0)

    def chunks() -> Iterator[bytes]:
        with tmp:
            while block := tmp.read(1 << 20):
                yield block

    return StreamingResponse(chunks(), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="batch-{batch_id[:12]}.zip"'})


# -- runs -------------------------------------------------------------------------------------------------------
def _run_row(studio: Studio, ad: AdView) -> dict[str, Any]:
    try:
        run = studio.run(ad.ad_id)
    except CutpilotError:
        run = {}
    nodes: dict[str, float] = {}
    for n in run.get("nodes") or []:
        if isinstance(n, dict) and "node" in n:
            nodes[str(n["node"])] = round(nodes.get(str(n["node"]), 0.0) + float(n.get("wall_s") or 0.0), 3)
    return {"ad": ad, "model": run.get("model"), "started": str(run.get("started_at") or "")[:19].replace("T", " "),
            "total_s": run.get("total_s", ad.total_s), "nodes": sorted(nodes.items(), key=lambda kv: -kv[1]),
            "warnings": list(run.get("warnings") or ad.warnings),
            "fallbacks": [f for f in run.get("fallbacks") or [] if isinstance(f, dict)]}


@router.get("/runs", response_class=HTMLResponse)
def runs(request: Request) -> HTMLResponse:
    studio = _studio(request)
    try:
        ads = studio.ads(limit=100)
    except CutpilotError:
        ads = []
    return _page(request, "runs.html", {"nav": "runs", "runs": [_run_row(studio, a) for a in ads]})

"""The REST API (`/api/...`, JSON in and out, errors as {"error": "one line"}) and the media routes (`/media/...`).

Every route is a thin call into the Studio service; blocking work runs in the thread pool, long work is a job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cutpilot.errors import InputError
from cutpilot.studio.jobs import new_id
from cutpilot.studio.service import Studio
from cutpilot.studio.views import AdView, BatchView, ClipView, JobView, ReviseView

router = APIRouter()
media_router = APIRouter()

MAX_UPLOAD_FILES = 100


def studio_of(request: Request) -> Studio:
    studio: Studio = request.app.state.studio
    return studio


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IngestBody(_Body):
    paths: list[str] = Field(default_factory=list, max_length=1000)
    annotations: str | None = None
    product: str | None = Field(default=None, max_length=200)


class AdBody(_Body):
    brief: str = Field(min_length=1, max_length=4000)
    duration_s: float | None = None
    aspect: Literal["9:16", "1:1", "4:5", "16:9"] | None = None
    lang: Literal["zh", "en"] | None = None
    product: str | None = Field(default=None, max_length=200)


class TextBody(_Body):
    text: str = Field(min_length=1, max_length=2000)


class SwapBody(_Body):
    clip_id: str = Field(min_length=1, max_length=200)


class LockBody(_Body):
    locked: bool = True


class ResearchBody(_Body):
    query: str | None = Field(default=None, max_length=500)
    text: str | None = Field(default=None, max_length=500)


class BatchBody(_Body):
    rows: list[dict[str, Any] | str] = Field(min_length=1, max_length=200)
    matrix: dict[str, Any] | None = None


def _one_line(e: ValidationError) -> str:
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err.get("loc", ())) or "body"
    return f"bad value for {loc}: {err.get('msg', 'invalid')}"


# -- library ---------------------------------------------------------------------------------------------------------
@router.get("/clips", response_model=list[ClipView])
async def list_clips(
    request: Request, q: str | None = None, product: str | None = None,
    content_type: list[str] | None = Query(default=None), format: list[str] | None = Query(default=None),
    min_dur: float | None = None, max_dur: float | None = None, verified: bool | None = None,
    generated: bool | None = None, limit: int = Query(default=60, ge=1, le=1000),
) -> list[ClipView]:
    """Hybrid search with `q`, else the listing; content_type / format take canonical names, aliases (中文 too)
    or the team's own labels."""
    s = studio_of(request)
    return await run_in_threadpool(lambda: s.clips(q, product=product, content_type=content_type, format=format,
                                                   min_dur=min_dur, max_dur=max_dur, verified=verified,
                                                   generated=generated, limit=limit))


@router.get("/clips/{clip_id}", response_model=ClipView)
async def get_clip(request: Request, clip_id: str) -> ClipView:
    return await run_in_threadpool(studio_of(request).clip, clip_id)


@router.patch("/clips/{clip_id}", response_model=ClipView)
async def patch_clip(request: Request, clip_id: str) -> ClipView:
    """Correct a clip's fields (content_type, format, product, transcript, description, tags, trend_tags,
    language); they become human-verified, as with `cutpilot clips edit`."""
    body = await _json(request)
    if not isinstance(body, dict):
        raise InputError("send a JSON object of field: value")
    return await run_in_threadpool(studio_of(request).edit_clip, clip_id, body)


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except (ValueError, UnicodeDecodeError):
        raise InputError("the body is not valid JSON") from None


# -- ingest and jobs -------------------------------------------------------------------------------------------------
@router.post("/ingest", status_code=202, openapi_extra={"requestBody": {"content": {
    "application/json": {"schema": IngestBody.model_json_schema()},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
        "annotations": {"type": "string", "format": "binary"}, "product": {"type": "string"}}}}}}})
async def ingest(request: Request) -> dict[str, str]:
    """Ingest server paths (JSON) or uploaded files (multipart: files, optional annotations, product) → job."""
    s = studio_of(request)
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        length = int(request.headers.get("content-length") or 0)
        if length > s.max_upload_bytes * MAX_UPLOAD_FILES:
            raise InputError("the upload is larger than the studio accepts")
        form = await request.form(max_files=MAX_UPLOAD_FILES + 1, max_fields=20)
        job_id = new_id()
        paths: list[Path] = []
        ann: Path | None = None
        try:
            for f in form.getlist("files"):
                if isinstance(f, str) or not f.filename:
                    continue
                p = await run_in_threadpool(s.save_upload, f.filename, f.file, f.size, folder=job_id)
                if p.suffix.lower() in (".jsonl", ".json", ".csv", ".yaml"):
                    raise InputError(f"{f.filename}: send annotation files as `annotations`, not `files`")
                paths.append(p)
            a = form.get("annotations")
            if a is not None and not isinstance(a, str) and a.filename:
                ann = await run_in_threadpool(s.save_upload, a.filename, a.file, a.size, folder=job_id)
            product = form.get("product")
        finally:
            await form.close()
        if not paths:
            raise InputError("no files uploaded: send them as `files`")
        return {"job_id": s.start_ingest(paths, ann, product if isinstance(product, str) and product else None,
                                         job_id=job_id)}
    try:
        body = IngestBody.model_validate(await _json(request))
    except ValidationError as e:
        raise InputError(_one_line(e)) from None
    job = s.start_ingest([Path(p) for p in body.paths], Path(body.annotations) if body.annotations else None,
                         body.product)
    return {"job_id": job}


@router.get("/jobs", response_model=list[JobView])
async def list_jobs(request: Request, limit: int = Query(default=50, ge=1, le=500)) -> list[JobView]:
    return studio_of(request).jobs(limit)


@router.get("/jobs/{job_id}", response_model=JobView)
async def get_job(request: Request, job_id: str) -> JobView:
    return studio_of(request).job(job_id)


@router.get("/jobs/{job_id}/events", response_class=StreamingResponse)
async def job_events(request: Request, job_id: str) -> StreamingResponse:
    """Server-sent events: one `progress` event per change, then `done` (or `failed`) and the stream ends."""
    s = studio_of(request)
    s.job(job_id)  # 404 before the stream starts

    async def stream() -> Any:
        async for j in s.events(job_id):
            if await request.is_disconnected():
                return
            kind = j.status if j.status in ("done", "failed") else "progress"
            yield f"event: {kind}\ndata: {j.model_dump_json()}\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"cache-control": "no-cache", "x-accel-buffering": "no"})


# -- ads -------------------------------------------------------------------------------------------------------------
@router.post("/ads", status_code=202)
async def create_ad(request: Request, body: AdBody) -> dict[str, str]:
    """Plan an ad in the background; it stops at review (GET /api/ads/{ad_id} → status `review`)."""
    s = studio_of(request)
    ad_id = s.create_ad(body.brief, duration_s=body.duration_s, aspect=body.aspect, lang=body.lang,
                        product=body.product)
    return {"ad_id": ad_id, "job_id": str(s.ad(ad_id, shots=False).job_id)}


@router.get("/ads", response_model=list[AdView])
async def list_ads(request: Request, limit: int = Query(default=50, ge=1, le=500)) -> list[AdView]:
    return await run_in_threadpool(studio_of(request).ads, limit)


@router.get("/ads/{ad_id}", response_model=AdView)
async def get_ad(request: Request, ad_id: str) -> AdView:
    return await run_in_threadpool(studio_of(request).ad, ad_id)


@router.get("/ads/{ad_id}/run")
async def get_run(request: Request, ad_id: str) -> dict[str, Any]:
    return await run_in_threadpool(studio_of(request).run, ad_id)


@router.post("/ads/{ad_id}/revise", response_model=ReviseView)
async def revise(request: Request, ad_id: str, body: TextBody) -> ReviseView:
    return await run_in_threadpool(studio_of(request).revise, ad_id, body.text)


@router.post("/ads/{ad_id}/slots/{index}/swap", response_model=ReviseView)
async def swap(request: Request, ad_id: str, index: int, body: SwapBody) -> ReviseView:
    return await run_in_threadpool(studio_of(request).swap, ad_id, index, body.clip_id)


@router.post("/ads/{ad_id}/slots/{index}/lock", response_model=ReviseView)
async def lock(request: Request, ad_id: str, index: int, body: LockBody | None = None) -> ReviseView:
    return await run_in_threadpool(studio_of(request).lock, ad_id, index, body.locked if body else True)


@router.post("/ads/{ad_id}/slots/{index}/line", response_model=ReviseView)
async def line(request: Request, ad_id: str, index: int, body: TextBody) -> ReviseView:
    return await run_in_threadpool(studio_of(request).edit_line, ad_id, index, body.text)


@router.post("/ads/{ad_id}/slots/{index}/research", response_model=ReviseView)
async def research(request: Request, ad_id: str, index: int, body: ResearchBody) -> ReviseView:
    query = body.query or body.text
    if not query:
        raise InputError("give `query`: what to search for in this shot")
    return await run_in_threadpool(studio_of(request).research, ad_id, index, query)


@router.post("/ads/{ad_id}/preview")
async def preview(request: Request, ad_id: str) -> dict[str, str]:
    """Build (or reuse) the draft preview of the current cut."""
    await run_in_threadpool(studio_of(request).preview, ad_id)
    return {"preview_url": f"/api/ads/{ad_id}/files/preview.mp4"}


@router.post("/ads/{ad_id}/approve", status_code=202)
async def approve(request: Request, ad_id: str) -> dict[str, Any]:
    s = studio_of(request)
    await run_in_threadpool(s.approve, ad_id)
    v = await run_in_threadpool(lambda: s.ad(ad_id, shots=False))
    return {"ad_id": ad_id, "status": v.status, "job_id": v.job_id}


@router.get("/ads/{ad_id}/files/{name}", response_class=FileResponse)
async def ad_file(request: Request, ad_id: str, name: str) -> FileResponse:
    """An ad's own output (ad.mp4, preview.mp4, captions.srt, …), with HTTP Range."""
    return FileResponse(studio_of(request).ad_file(ad_id, name))


# -- batches ---------------------------------------------------------------------------------------------------------
@router.post("/batches", status_code=202)
async def create_batch(request: Request, body: BatchBody) -> dict[str, str]:
    """Rows like a briefs file's (brief, product, duration_s, aspect, lang, audiences, aspects, channels,
    durations), times an optional matrix {audiences, platforms, aspects, lengths}."""
    s = studio_of(request)
    rows: list[Any] = list(body.rows)
    batch_id = await run_in_threadpool(s.create_batch, rows, body.matrix)
    return {"batch_id": batch_id, "job_id": str(s.batch(batch_id).job_id)}


@router.get("/batches", response_model=list[BatchView])
async def list_batches(request: Request) -> list[BatchView]:
    return await run_in_threadpool(studio_of(request).batches)


@router.get("/batches/{batch_id}", response_model=BatchView)
async def get_batch(request: Request, batch_id: str) -> BatchView:
    return await run_in_threadpool(studio_of(request).batch, batch_id)


@router.post("/batches/{batch_id}/variants/{variant_id}/approve", response_model=BatchView)
async def approve_variant(request: Request, batch_id: str, variant_id: str) -> BatchView:
    return await run_in_threadpool(studio_of(request).decide_variant, batch_id, variant_id, True)


@router.post("/batches/{batch_id}/variants/{variant_id}/reject", response_model=BatchView)
async def reject_variant(request: Request, batch_id: str, variant_id: str) -> BatchView:
    return await run_in_threadpool(studio_of(request).decide_variant, batch_id, variant_id, False)


@router.post("/batches/{batch_id}/variants/{variant_id}/rerender", response_model=BatchView, status_code=202)
async def rerender_variant(request: Request, batch_id: str, variant_id: str) -> BatchView:
    return await run_in_threadpool(studio_of(request).rerender_variant, batch_id, variant_id)


@router.get("/batches/{batch_id}/variants/{variant_id}/files/{name}", response_class=FileResponse)
async def variant_file(request: Request, batch_id: str, variant_id: str, name: str) -> FileResponse:
    return FileResponse(studio_of(request).variant_file(batch_id, variant_id, name))


@router.get("/runs")
async def runs(request: Request, limit: int = Query(default=50, ge=1, le=500)) -> list[dict[str, Any]]:
    """Runs history: each ad with its brain, timings, warnings and fallbacks (from its run.json)."""
    s = studio_of(request)

    def rows() -> list[dict[str, Any]]:
        out = []
        for v in s.ads(limit):
            run = s.run(v.ad_id)
            out.append({"ad_id": v.ad_id, "status": v.status, "brief": v.brief, "brain": v.brain,
                        "model": run.get("model"), "created": v.created, "total_s": v.total_s,
                        "timings": run.get("nodes", []), "warnings": run.get("warnings", []),
                        "fallbacks": run.get("fallbacks", []), "files": v.files})
        return out

    return await run_in_threadpool(rows)


# -- media -----------------------------------------------------------------------------------------------------------
@media_router.get("/media/clips/{clip_id}", response_class=FileResponse)
async def clip_media(request: Request, clip_id: str) -> FileResponse:
    """A clip's source file (the player seeks to the clip's start), with HTTP Range."""
    return FileResponse(await run_in_threadpool(studio_of(request).clip_media, clip_id))


@media_router.get("/media/thumbs/{clip_id}", response_class=FileResponse)
async def clip_thumb(request: Request, clip_id: str) -> FileResponse:
    from cutpilot.errors import NotFoundError

    p = await run_in_threadpool(studio_of(request).clip_thumbnail, clip_id)
    if p is None:
        raise NotFoundError(f"clip {clip_id} has no thumbnail")
    return FileResponse(p, headers={"cache-control": "max-age=3600"})


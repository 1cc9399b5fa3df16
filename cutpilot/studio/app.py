"""The studio app: one FastAPI app that is both the web UI (pages) and the REST API, behind the security layer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cutpilot.errors import CutpilotError, InputError, NotFoundError, StoreError
from cutpilot.settings import Settings
from cutpilot.studio.service import Studio

if TYPE_CHECKING:
    import jinja2

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def templates_env() -> jinja2.Environment:
    """The pages' Jinja2 environment: cutpilot/studio/templates, autoescape always on (clip text is data)."""
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)


def _status(e: CutpilotError) -> int:
    if isinstance(e, NotFoundError):
        return 404
    if isinstance(e, InputError):
        return 400
    if isinstance(e, StoreError):
        return 503
    return 500


def create_app(settings: Settings | None = None, *, studio: Studio | None = None) -> FastAPI:
    """Build the app; a Studio it makes itself is closed with the app (one given by the caller is not)."""
    from fastapi.staticfiles import StaticFiles
    from fastapi.templating import Jinja2Templates

    from cutpilot import __version__
    from cutpilot.settings import get_settings
    from cutpilot.studio import api, pages
    from cutpilot.studio.security import SecurityMiddleware

    settings = settings or (studio.settings if studio is not None else get_settings())
    own = studio is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if own:
            app.state.studio.close()

    app = FastAPI(title="cutpilot studio", version=__version__, lifespan=lifespan,
                  description="Library, ingest, ads (plan → review → render) and batches over one CUTPILOT_HOME.")
    app.state.studio = studio if studio is not None else Studio(settings)
    app.state.settings = settings
    app.state.templates = Jinja2Templates(env=templates_env())

    @app.exception_handler(CutpilotError)
    async def cutpilot_error(request: Request, e: CutpilotError) -> JSONResponse:
        return JSONResponse({"error": e.one_line()}, status_code=_status(e))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, e: RequestValidationError) -> JSONResponse:
        errs = e.errors()
        err = errs[0] if errs else {}
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
        msg = " ".join(str(err.get("msg", "invalid")).split())
        return JSONResponse({"error": f"bad value for {loc}: {msg}"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        detail = e.detail if isinstance(e.detail, str) else "error"
        return JSONResponse({"error": detail}, status_code=e.status_code, headers=getattr(e, "headers", None))

    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.include_router(api.router, prefix="/api")
    app.include_router(api.media_router)
    app.include_router(pages.router)
    app.add_middleware(SecurityMiddleware, token=settings.api_token)
    return app

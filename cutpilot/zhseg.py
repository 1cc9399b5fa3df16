"""The one adapter onto jieba (Chinese word segmentation): search tokens, words, keywords.

Loaded lazily and once: jieba builds its prefix dictionary on first use (~0.5 s), which only Chinese text pays.
"""

from __future__ import annotations

import logging
from typing import Any

_jieba: Any = None


def _lib() -> Any:
    global _jieba
    if _jieba is None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        _jieba = jieba
    return _jieba


def words(text: str) -> list[str]:
    """Jieba's precise-mode words, in order (punctuation kept as its own tokens)."""
    return list(_lib().lcut(text))


def search_tokens(text: str) -> list[str]:
    """Search-mode tokens: long words and their sub-words (what BM25 indexes)."""
    return list(_lib().lcut_for_search(text))


def keywords(text: str, k: int, pos: tuple[str, ...]) -> list[str]:
    """TF-IDF keywords restricted to the given parts of speech."""
    import jieba.analyse

    _lib()
    return list(jieba.analyse.extract_tags(text, topK=k, allowPOS=pos))

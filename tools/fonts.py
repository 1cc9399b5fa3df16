"""Font selection: Noto Sans CJK's *Simplified Chinese* face, because PIL/moviepy default to face 0 (Japanese)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from cutpilot.errors import ToolMissingError

_NOTO_DIRS = [Path("/usr/share/fonts/opentype/noto"), Path("/usr/share/fonts/noto-cjk"), Path("/usr/share/fonts")]
_SC_NAMES = ("Noto Sans CJK SC", "Source Han Sans SC")


@lru_cache(maxsize=8)
def _sc_index(path: str) -> int:
    """Index of the SC face inside a .ttc (read from the font names, not assumed: Debian's order is JP,KR,SC,...)."""
    from PIL import ImageFont

    for i in range(16):
        try:
            f = ImageFont.truetype(path, 20, index=i)
        except OSError:
            break
        family = f.getname()[0] or ""
        if any(family.startswith(n) for n in _SC_NAMES) and "Mono" not in family:
            return i
    return 0


def find_font(bold: bool = False) -> tuple[Path, int]:
    weight = "Bold" if bold else "Regular"
    for d in _NOTO_DIRS:
        for cand in (d / f"NotoSansCJK-{weight}.ttc", d / f"NotoSansCJKsc-{weight}.otf"):
            if cand.is_file():
                return cand, (_sc_index(str(cand)) if cand.suffix == ".ttc" else 0)
    raise ToolMissingError("Noto Sans CJK not found; install Debian fonts-noto-cjk or set CUTPILOT_FONT_PATH")


def cjk_font(override: str | Path | None = None, index: int | None = None, *, bold: bool = False) -> tuple[Path, int]:
    """(font file, face index) for zh+en text: a configured/brand font when given, else Noto Sans CJK SC."""
    if override:
        p = Path(override)
        if not p.is_file():
            raise ToolMissingError(f"font not found: {p}")
        if index is None:
            index = _sc_index(str(p)) if p.suffix.lower() == ".ttc" else 0
        return p, index
    return find_font(bold=bold)


def load_font(size: int, override: str | Path | None = None, index: int | None = None, *, bold: bool = False) -> Any:
    """A PIL FreeTypeFont of the chosen face at `size` px."""
    from PIL import ImageFont

    path, idx = cjk_font(override, index, bold=bold)
    return ImageFont.truetype(str(path), size, index=idx)

"""Where the shared licensed test media lives (see its NOTICE.md): beside the checkout in CI, or as configured."""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent


def _find() -> str:
    for cand in (os.environ.get("CUTPILOT_TEST_MEDIA"), _REPO.parent / "shared" / "media", "/work/shared/media"):
        if cand and Path(cand).is_dir():
            return str(cand)
    return str(_REPO.parent / "shared" / "media")


SHARED_MEDIA = _find()

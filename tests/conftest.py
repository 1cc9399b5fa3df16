"""Shared test set-up: offline, no LLM endpoint leaking in from the environment, a per-test CUTPILOT_HOME."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# one joined Whisper model for every test home and session on this machine (a join is 0.6 s and 142 MB), kept
# out of the user's own cache
os.environ.setdefault("CUTPILOT_MODELS_DIR", str(Path(tempfile.gettempdir()) / "cutpilot-test-models"))
for _var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "CUTPILOT_LLM_MODEL", "CUTPILOT_VLM_MODEL", "QDRANT_URL"):
    os.environ.pop(_var, None)

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own CUTPILOT_HOME so no test sees another's library."""
    home = tmp_path / "home"
    monkeypatch.setenv("CUTPILOT_HOME", str(home))
    for var in ("CUTPILOT_CHECKPOINT_URL", "CUTPILOT_EXECUTOR", "RAY_ADDRESS", "QDRANT_URL", "CUTPILOT_MEDIA_ROOT"):
        monkeypatch.delenv(var, raising=False)  # a developer's own deployment never leaks into a test
    from cutpilot.settings import get_settings

    get_settings.cache_clear()
    return home


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "llm_live: against a real local LLM server (scripts/llm_server.sh); "
                                       "runs only with CUTPILOT_LLM_LIVE=1")

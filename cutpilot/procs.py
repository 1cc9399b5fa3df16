"""Child processes (ffmpeg, ffprobe, tesseract) die with cutpilot, even when it is killed with SIGKILL.

A `kill -9` runs no Python cleanup, so the child has to arrange it itself: Linux's PR_SET_PDEATHSIG, set in the
child between fork and exec, has the kernel send it SIGKILL when the thread that started it dies. That thread is
the one blocked in `subprocess.run`, so it lives exactly as long as the call. Elsewhere this is a no-op.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

PR_SET_PDEATHSIG = 1
_prctl: Any = None


def _load_prctl() -> Any:
    """libc's prctl with its argument types set, looked up once in the parent (never in the forked child)."""
    global _prctl
    if _prctl is None:
        fn = ctypes.CDLL(None, use_errno=True).prctl
        fn.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        fn.restype = ctypes.c_int
        _prctl = fn
    return _prctl


def die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that ties the child's life to this process (None off Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = _load_prctl()
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    sig = int(signal.SIGKILL)

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect: nobody wants this child
            os._exit(1)

    return preexec


def child_kwargs() -> dict[str, Any]:
    """Keyword arguments for subprocess.run / Popen: `subprocess.run(cmd, **child_kwargs(), ...)`."""
    fn = die_with_parent()
    return {"preexec_fn": fn} if fn is not None else {}

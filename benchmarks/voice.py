"""Mandarin voice benchmark: how much of each offline voice the packaged Whisper hears, and what the gate costs.

Per voice (gcin3 male, gcin5 female, espeak-ng 1.51 `cmn`), the same ten real ad lines are synthesised through
`tools.tts` (fresh cache) and gated by `tools.voicecheck.check_speech` (fresh cache, then again to time a hit).
Reports CER per line and per voice, the pass rate at the configured threshold, synthesis seconds per line and
the ASR round-trip seconds per line, all in the same run.

    .venv/bin/python benchmarks/voice.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cutpilot.settings import Settings  # noqa: E402
from index.asr import load_model  # noqa: E402
from tools import zhvoice  # noqa: E402
from tools.tts import tts  # noqa: E402
from tools.voicecheck import check_speech  # noqa: E402

LINES = [
    "全新升级的第三代紫熨斗眼霜，一觉淡褪侧睡纹。",
    "乐高机械组，拼出你的第一台超跑！",
    "今天直播间下单买一送一。",
    "侧睡压出的细纹，一支淡纹眼霜就够了。",
    "限时优惠，立即下单！",
    "新品上市，限时优惠，买一送一。",
    "这款连衣裙面料柔软，穿上特别显瘦。",
    "点击下方链接，马上带回家。",
    "夏天出门，记得涂防晒霜。",
    "4千克大容量，20多年老品牌，适合5-6岁的孩子。",
]
WHISPER_DIR = Path(tempfile.gettempdir()) / "cutpilot-test-whisper-base"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="cutpilot-voicebench-") as td:
        s = Settings(home=Path(td) / "home", whisper_model=str(WHISPER_DIR), whisper_threads=2)
        t = time.perf_counter()
        load_model(s)
        load_s = time.perf_counter() - t
        voices = [v for v in ("gcin3", "gcin5") if zhvoice.available(v)] + ["espeak"]
        rows: dict[str, list[tuple[float, float, float, float, float, str]]] = {}
        for v in voices:
            out = Path(td) / v
            rows[v] = []
            for line in LINES:
                t = time.perf_counter()
                if v == "espeak":
                    r = tts(line, lang="zh", settings=s, out_dir=out, provider="espeak")
                else:
                    r = tts(line, lang="zh", settings=s, out_dir=out, provider="gcin", voice=v)
                syn = time.perf_counter() - t
                t = time.perf_counter()
                c = check_speech(r.path, line, "zh", s, cache_dir=out / "checks")
                asr = time.perf_counter() - t
                t = time.perf_counter()
                again = check_speech(r.path, line, "zh", s, cache_dir=out / "checks")
                hit = time.perf_counter() - t
                assert again.cached and again.error == c.error
                rows[v].append((c.error, syn, asr, hit, r.duration_s, c.heard))
        thr = s.voice_check_max_cer
        print(f"# Voice benchmark ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}), {os.cpu_count()} CPUs, "
              f"load avg {os.getloadavg()[0]:.1f}; Whisper base int8 load {load_s:.2f} s (once per process)\n")
        print("| line | " + " | ".join(f"{v} CER" for v in voices) + " |")
        print("|---|" + "---|" * len(voices))
        for i, line in enumerate(LINES):
            print(f"| {line} | " + " | ".join(f"{rows[v][i][0]:.2f}" for v in voices) + " |")
        print()
        print(f"| voice | mean CER | lines passing (CER ≤ {thr}) | synth s/line | audio s/line | "
              "ASR gate s/line | gate / synth | cached gate ms |")
        print("|---|---|---|---|---|---|---|---|")
        for v in voices:
            rs = rows[v]
            n = len(rs)
            cer = sum(x[0] for x in rs) / n
            ok = sum(x[0] <= thr for x in rs)
            syn = sum(x[1] for x in rs) / n
            asr = sum(x[2] for x in rs) / n
            hit = sum(x[3] for x in rs) / n * 1000
            dur = sum(x[4] for x in rs) / n
            print(f"| {v} | {cer:.3f} | {ok}/{n} | {syn:.2f} | {dur:.2f} | {asr:.2f} | {asr / syn:.1f}x | {hit:.1f} |")
        print()
        for v in voices:
            print(f"{v} heard: " + " / ".join(x[5] for x in rows[v]))


if __name__ == "__main__":
    main()

"""Batch: variants matrix, fail-and-continue, summary.json, and resume after a killed run (finished variants are
skipped, unfinished ones made)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from agent_fakes import MemorySource, domain_records
from agent_helpers import NoVoiceTools

from agent.batch import expand, load_rows, run_batch
from cutpilot.errors import InputError
from cutpilot.settings import Settings

REPO = Path(__file__).resolve().parent.parent

YAML = """
briefs:
  - id: sleep
    brief: 做一条侧睡纹广告
    audiences: [学生党, 职场妈妈]
    aspects: ["9:16", "1:1"]
    durations: [15, 30]
  - brief: make a 15s side-sleep wrinkle ad
  - id: bad
    brief: make a 400s ad
"""


def test_matrix_and_formats(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(YAML, encoding="utf-8")
    vs = expand(load_rows(tmp_path / "b.yaml"))
    assert len(vs) == 2 * 2 * 2 + 1 + 1 and len({v.key for v in vs}) == len(vs)
    (tmp_path / "b.csv").write_text("id,brief,aspects\nx,make a 10s ad,9:16|1:1\n", encoding="utf-8")
    assert [v.base["aspect"] for v in expand(load_rows(tmp_path / "b.csv"))] == ["9:16", "1:1"]
    (tmp_path / "b.jsonl").write_text('{"brief": "make a 10s ad", "durations": [10, 20]}\n', encoding="utf-8")
    assert [v.base["duration_s"] for v in expand(load_rows(tmp_path / "b.jsonl"))] == [10, 20]
    (tmp_path / "bad.csv").write_text("brief,aspect\nx,3:2\n", encoding="utf-8")
    with pytest.raises(InputError, match="row 1"):
        load_rows(tmp_path / "bad.csv")


def test_fail_and_continue_and_skip_finished(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(YAML, encoding="utf-8")
    s = Settings(home=tmp_path / "home")
    src = MemorySource(domain_records())
    summary = run_batch(tmp_path / "b.yaml", settings=s, library=src, out_dir=tmp_path / "out", render=False,
                        progress=False, tools=NoVoiceTools(s))
    assert (summary["ok"], summary["failed"]) == (9, 1)
    bad = next(r for r in summary["results"] if r["status"] == "failed")
    assert bad["key"] == "bad" and "400" in bad["error"]
    on_disk = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert on_disk["variants"] == 10
    v = next(r for r in summary["results"] if r["key"] == "sleep__学生党__9x16__15s")
    tl = json.loads(Path(v["paths"]["timeline"]).read_text())
    assert tl["output"]["aspect"] == "9:16" and sum(x["duration_ms"] for x in tl["video"]) == 15000
    again = run_batch(tmp_path / "b.yaml", settings=s, library=src, out_dir=tmp_path / "out", render=False,
                      progress=False, tools=NoVoiceTools(s))
    assert again["skipped"] == 9 and again["failed"] == 1 and again["ok"] == 0


KILLED = """
import sys, time
sys.path.insert(0, {tests!r})
from pathlib import Path
import agent.run as run_mod
from agent_fakes import MemorySource, domain_records
from agent_helpers import NoVoiceTools
from agent.batch import run_batch
from cutpilot.settings import Settings
real = run_mod.FrontDoor.make
count = {{"n": 0}}
def slow(*a, **k):
    count["n"] += 1
    if count["n"] == 3:
        print("third", flush=True)
        time.sleep(60)  # killed here
    return real(*a, **k)
run_mod.FrontDoor.make = slow
s = Settings(home=Path(sys.argv[2]))
run_batch(Path(sys.argv[1]), settings=s, library=MemorySource(domain_records()),
          out_dir=Path(sys.argv[3]), render=False, progress=False, tools=NoVoiceTools(s))
"""


def test_resume_after_killed_batch(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text("- brief: 做一条侧睡纹广告\n  durations: [10, 15, 20, 25]\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", KILLED.format(tests=str(REPO / "tests")), str(tmp_path / "b.yaml"),
                             str(tmp_path / "home"), str(out)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.time() + 90
    while time.time() < deadline and "third" not in proc.stdout.readline():
        pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "summary.json").exists()
    finished = sorted(p.parent.name for p in out.glob("*/run.json"))
    assert len(finished) == 2
    s = Settings(home=tmp_path / "home")
    summary = run_batch(tmp_path / "b.yaml", settings=s, library=MemorySource(domain_records()), out_dir=out,
                        render=False, progress=False, tools=NoVoiceTools(s))
    assert summary["skipped"] == 2 and summary["ok"] == 2 and summary["failed"] == 0
    assert len(list(out.glob("*/run.json"))) == 4

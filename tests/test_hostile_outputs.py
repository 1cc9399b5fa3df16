"""Issue 9, the output rows: batch identity by content (1), atomic output sets (4), safe destinations (6), a `'`
in CUTPILOT_HOME (11), children that die with their parent (12), and `cutpilot gc` for what killed runs leave."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from agent_fakes import MemorySource, domain_records
from agent_helpers import NoVoiceTools

from agent.batch import run_batch
from agent.run import make_ad
from cutpilot import atomic
from cutpilot.cli import main
from cutpilot.errors import InputError
from cutpilot.outdir import MARKER, check_out, claim, registered
from cutpilot.settings import Settings, get_settings
from cutpilot.timeline import CardItem, ClipItem, OutputSpec, Timeline
from tools.render import concat_line

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
LEGO = str(TESTS / "fixtures" / "render" / "hug_lego_product_shot.mp4")
SET = ("storyboard.json", "timeline.json", "captions.srt", "timeline.otio", "ad.mp4", "run.json")
BRIEFS = """
briefs:
  - id: sleep
    brief: {text}
    durations: [10, 15]
"""


class FakeAdTools(NoVoiceTools):
    """The planner for real, a render that writes a labelled stand-in file (the set logic is what is tested)."""

    label = b"ad"

    def render(self, timeline: Any, out: Path, *, quality: str, cache_dir: Path | None) -> Any:
        self._count("render")
        Path(out).write_bytes(self.label * 512)
        return {"path": str(out), "duration_s": timeline.duration_ms / 1000}


def _settings(home: Path) -> Settings:
    return Settings(home=home, voice_check=False)


def _batch(file: Path, out: Path, home: Path, tools: Any = None, render: bool = False) -> dict[str, Any]:
    s = _settings(home)
    return run_batch(file, settings=s, library=MemorySource(domain_records()), out_dir=out, render=render,
                     progress=False, tools=tools or NoVoiceTools(s))


def _complete(vdir: Path, render: bool) -> bool:
    return all((vdir / f).is_file() and (vdir / f).stat().st_size > 0
               for f in SET if render or f != "ad.mp4")


def _inside(summary: dict[str, Any], root: Path) -> None:
    for r in summary["results"]:
        for p in [r["out_dir"], *(r.get("paths") or {}).values()]:
            assert Path(p).resolve().is_relative_to(root.resolve()), (p, root)


# --- row 1: identity by content ---------------------------------------------------------------------------------
def test_batch_same_file_name_in_two_folders_makes_two_complete_sets(tmp_path: Path) -> None:
    """The same briefs.yaml (same name, same row key, same content) run from two campaign folders: the second is a
    new variant, made into its own folder, and neither summary points into the other campaign."""
    home = tmp_path / "home"
    for camp in ("campaignA", "campaignC"):
        (tmp_path / camp).mkdir()
        (tmp_path / camp / "briefs.yaml").write_text(BRIEFS.format(text="做一条侧睡纹广告"), encoding="utf-8")
    a = _batch(tmp_path / "campaignA" / "briefs.yaml", tmp_path / "campaignA" / "out", home)
    c = _batch(tmp_path / "campaignC" / "briefs.yaml", tmp_path / "campaignC" / "out", home)
    for camp, s in (("campaignA", a), ("campaignC", c)):
        assert (s["ok"], s["skipped"], s["failed"]) == (2, 0, 0), s
        _inside(s, tmp_path / camp / "out")
        on_disk = json.loads((tmp_path / camp / "out" / "summary.json").read_text(encoding="utf-8"))
        _inside(on_disk, tmp_path / camp / "out")
        for r in s["results"]:
            assert _complete(Path(r["out_dir"]), render=False)
    assert {r["thread_id"] for r in a["results"]}.isdisjoint({r["thread_id"] for r in c["results"]})
    again = _batch(tmp_path / "campaignC" / "briefs.yaml", tmp_path / "campaignC" / "out", home)
    assert (again["ok"], again["skipped"]) == (0, 2)  # unchanged content, same folder, files present: skipped


def test_batch_edited_brief_is_made_again(tmp_path: Path) -> None:
    home, f, out = tmp_path / "home", tmp_path / "briefs.yaml", tmp_path / "out"
    f.write_text(BRIEFS.format(text="做一条侧睡纹广告"), encoding="utf-8")
    first = _batch(f, out, home)
    assert first["ok"] == 2
    f.write_text(BRIEFS.format(text="make a side-sleep wrinkle ad for students"), encoding="utf-8")
    second = _batch(f, out, home)
    assert (second["ok"], second["skipped"]) == (2, 0), second
    assert all("changed" in r.get("note", "") for r in second["results"])
    for r in second["results"]:
        sb = json.loads(Path(r["paths"]["storyboard"]).read_text(encoding="utf-8"))
        assert "students" in sb["brief"]["text"]
        run = json.loads((Path(r["out_dir"]) / "run.json").read_text(encoding="utf-8"))
        assert run["thread_id"] == r["thread_id"]


def test_batch_changed_library_is_made_again(tmp_path: Path) -> None:
    home, f, out = tmp_path / "home", tmp_path / "briefs.yaml", tmp_path / "out"
    f.write_text("- id: one\n  brief: 做一条10秒的侧睡纹广告\n", encoding="utf-8")
    s = _settings(home)
    recs = domain_records()
    assert run_batch(f, settings=s, library=MemorySource(recs), out_dir=out, render=False, progress=False,
                     tools=NoVoiceTools(s))["ok"] == 1
    same = run_batch(f, settings=s, library=MemorySource(recs), out_dir=out, render=False, progress=False,
                     tools=NoVoiceTools(s))
    assert same["skipped"] == 1
    edited = [recs[0].model_copy(update={"description": "重新标注的画面"}), *recs[1:]]
    again = run_batch(f, settings=s, library=MemorySource(edited), out_dir=out, render=False, progress=False,
                      tools=NoVoiceTools(s))
    assert (again["ok"], again["skipped"]) == (1, 0) and "library" in again["results"][0]["note"]


def test_batch_deleted_ad_is_rendered_again(tmp_path: Path) -> None:
    home, f, out = tmp_path / "home", tmp_path / "briefs.yaml", tmp_path / "out"
    f.write_text(BRIEFS.format(text="做一条侧睡纹广告"), encoding="utf-8")
    tools = FakeAdTools(_settings(home))
    assert _batch(f, out, home, tools=tools, render=True)["ok"] == 2
    assert tools.calls["render"] == 2
    gone = next(out.glob("*/ad.mp4"))
    gone.unlink()
    again = _batch(f, out, home, tools=tools, render=True)
    assert (again["ok"], again["skipped"]) == (1, 1), again
    remade = next(r for r in again["results"] if r["status"] == "ok")
    assert "ad.mp4 missing" in remade["note"] and gone.is_file() and tools.calls["render"] == 3
    assert all(_complete(Path(r["out_dir"]), render=True) for r in again["results"])


def test_batch_row_ids_cannot_leave_the_batch_folder(tmp_path: Path) -> None:
    from agent.batch import expand, load_rows

    f = tmp_path / "b.yaml"
    f.write_text("- id: ../../etc\n  brief: make a 10s ad\n", encoding="utf-8")
    (v,) = expand(load_rows(f))
    assert (tmp_path / "out" / v.key).resolve().parent == (tmp_path / "out").resolve()
    f.write_text("- id: a\n  brief: x\n- id: a\n  brief: y\n", encoding="utf-8")
    with pytest.raises(InputError, match="rows 1 and 2"):
        expand(load_rows(f))


# --- row 4: atomic outputs --------------------------------------------------------------------------------------
KILL_WRITE = """
import sys, time
sys.path.insert(0, {tests!r})
from pathlib import Path
from agent_fakes import MemorySource, domain_records
from agent_helpers import NoVoiceTools
from agent.run import make_ad
from cutpilot import atomic
from cutpilot.settings import Settings

class Slow(NoVoiceTools):
    def render(self, timeline, out, *, quality, cache_dir):
        with open(out, "wb") as f:
            f.write(b"new" * 512)
            f.flush()
            if sys.argv[3] == "write":
                print("writing", flush=True)
                time.sleep(60)  # killed here, half way through the final write of ad.mp4
        return {{"path": str(out)}}

real = atomic.os.replace
def replace(src, dst):
    real(src, dst)
    if sys.argv[3] == "switch" and Path(dst).name == "captions.srt":
        print("switching", flush=True)
        time.sleep(60)  # killed here, three files of the new set in place, three of the old
atomic.os.replace = replace
s = Settings(home=Path(sys.argv[1]), voice_check=False)
make_ad("做一条15秒的侧睡纹广告", settings=s, library=MemorySource(domain_records()), out_dir=Path(sys.argv[2]),
        tools=Slow(s), thread_id="new")
"""


def _kill_at(home: Path, out: Path, point: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", KILL_WRITE.format(tests=str(TESTS)), str(home), str(out), point],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.time() + 120
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line.strip() in ("writing", "switching") or not line:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def _snapshot(out: Path) -> dict[str, bytes]:
    return {f: (out / f).read_bytes() for f in SET}


def _good_set(home: Path, out: Path) -> dict[str, bytes]:
    s = _settings(home)
    make_ad("做一条15秒的侧睡纹广告", settings=s, library=MemorySource(domain_records()), out_dir=out,
            tools=FakeAdTools(s), thread_id="old")
    return _snapshot(out)


def test_kill_during_final_write_leaves_the_previous_good_set(tmp_path: Path) -> None:
    home, out = tmp_path / "home", tmp_path / "out"
    before = _good_set(home, out)
    _kill_at(home, out, "write")
    assert _snapshot(out) == before  # not a 0-byte ad.mp4 beside the old run.json: the whole old set
    assert json.loads(before["run.json"])["thread_id"] == "old"
    leftovers = [p for p in out.iterdir() if atomic.temp_owner(p.name)]
    assert leftovers, "the killed run's staged files are there for gc"
    from cutpilot.cli_gc import find

    sweep = find(home, [Path(p) for p in registered(home)], min_age_s=600)
    assert {p for p, _ in sweep.remove} >= set(leftovers)


def test_kill_during_the_switch_is_finished_by_the_next_writer(tmp_path: Path) -> None:
    home, out = tmp_path / "home", tmp_path / "out"
    _good_set(home, out)
    _kill_at(home, out, "switch")
    assert (out / atomic.JOURNAL).is_file()
    assert json.loads((out / "run.json").read_text())["thread_id"] == "old"  # run.json is switched last
    assert atomic.recover(out) == 3  # what `cutpilot gc` or the next run in this folder does first
    after = _snapshot(out)
    assert json.loads(after["run.json"])["thread_id"] == "new" and after["ad.mp4"] == b"new" * 512
    assert not (out / atomic.JOURNAL).exists() and not [p for p in out.iterdir() if atomic.temp_owner(p.name)]


def test_output_set_switches_whole_or_not_at_all(tmp_path: Path) -> None:
    out = tmp_path / "o"
    with atomic.OutputSet(out) as st:
        st.write_text("a.txt", "old a")
        st.write_text("ad.mp4", "old ad")
        st.commit()
    with pytest.raises(RuntimeError), atomic.OutputSet(out) as st:
        st.write_text("a.txt", "new a")
        raise RuntimeError("render failed half way")
    assert (out / "a.txt").read_text() == "old a" and sorted(os.listdir(out)) == ["a.txt", "ad.mp4"]
    with atomic.OutputSet(out) as st:  # a plan-only run drops the old ad instead of leaving it beside the new plan
        st.write_text("a.txt", "new a")
        st.commit(drop=("ad.mp4",))
    assert sorted(os.listdir(out)) == ["a.txt"] and (out / "a.txt").read_text() == "new a"
    with pytest.raises(FileNotFoundError), atomic.OutputSet(out) as st:
        st.path("never-written.mp4")
        st.commit()
    assert sorted(os.listdir(out)) == ["a.txt"]


# --- row 6: safe destinations -----------------------------------------------------------------------------------
def test_out_refuses_system_folders_and_foreign_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["make", "a 10s ad", "--out", "/"], ["make", "a 10s ad", "--out", "/etc", "--force"],
                 ["chat", "a 10s ad", "--out", "/usr/share"], ["batch", "b.yaml", "--out", "/var/lib"],
                 ["demo", "--out", "/boot"]):
        t0 = time.perf_counter()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "system folder" in err and argv[argv.index("--out") + 1] in err
        assert time.perf_counter() - t0 < 2, "refused before any work"
    existing = tmp_path / "existing.txt"
    existing.write_text("my notes", encoding="utf-8")
    assert main(["make", "a 10s ad", "--out", str(existing)]) == 2
    assert str(existing) in capsys.readouterr().err
    tl = tmp_path / "t.json"
    tl.write_text("{}", encoding="utf-8")
    assert main(["render", str(tl), "--out", str(existing)]) == 2
    err = capsys.readouterr().err
    assert str(existing) in err and "--force" in err and existing.read_text() == "my notes"
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.docx").write_text("x")
    assert main(["batch", str(tl), "--out", str(busy)]) == 2
    assert str(busy) in capsys.readouterr().err
    assert check_out(busy, force=True) == busy  # --force: the user said so
    with pytest.raises(InputError, match="system folder"):
        check_out("/", force=True)
    mine = tmp_path / "mine"
    claim(mine)
    (mine / "ad.mp4").write_bytes(b"x")
    assert check_out(mine) == mine and (mine / MARKER).is_file()  # an earlier cutpilot output is fine
    assert check_out(tmp_path / "new-folder") == tmp_path / "new-folder"


@pytest.mark.slow
def test_render_over_a_foreign_file_only_with_force(tmp_path: Path) -> None:
    tl = Timeline(output=OutputSpec.preset("9:16", scale=0.2), video=[
        ClipItem(id="a", source=LEGO, in_ms=0, out_ms=800, start_ms=0, duration_ms=800, audio=True)])
    p = tl.save(tmp_path / "t.json")
    existing = tmp_path / "existing.txt"
    existing.write_text("my notes", encoding="utf-8")
    assert main(["render", str(p), "--out", str(existing)]) == 2 and existing.read_text() == "my notes"
    assert main(["render", str(p), "--out", str(existing), "--force", "-q", "draft"]) == 0
    assert existing.read_bytes()[4:8] == b"ftyp"
    assert main(["render", str(p), "--out", str(existing), "-q", "draft"]) == 0  # now it is a cutpilot render


# --- row 11: a ' in CUTPILOT_HOME -------------------------------------------------------------------------------
def test_concat_list_escapes_quotes() -> None:
    assert concat_line("/h/it's/seg.mp4") == "file '/h/it'\\''s/seg.mp4'\n"
    with pytest.raises(Exception, match="line break"):
        concat_line("/h/a\nb.mp4")


@pytest.mark.slow
def test_quote_in_cutpilot_home_renders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "it's 100% home"
    monkeypatch.setenv("CUTPILOT_HOME", str(home))
    get_settings.cache_clear()
    tl = Timeline(output=OutputSpec.preset("9:16", scale=0.2), video=[
        ClipItem(id="a", source=LEGO, in_ms=0, out_ms=1000, start_ms=0, duration_ms=1000, audio=True),
        CardItem(id="b", text="限时优惠", start_ms=1000, duration_ms=1000)])
    p = tl.save(home / "tl's.json")
    out = home / "o'ut" / "ad.mp4"
    assert main(["render", str(p), "--out", str(out), "-q", "draft"]) == 0
    pr = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(out)],
                        capture_output=True, text=True, check=True)
    assert abs(float(pr.stdout) - 2.0) < 0.1


# --- row 12: children die with their parent ---------------------------------------------------------------------
PARENT = """
import subprocess, sys
from cutpilot.media import run_ffmpeg, which
from cutpilot.procs import child_kwargs
args = ["-re", "-f", "lavfi", "-i", "anullsrc", "-t", "300", "-f", "null", "-"]
print("ready", flush=True)
if sys.argv[1] == "cutpilot":
    run_ffmpeg(args)
else:  # the control: a bare subprocess, as before the fix
    subprocess.run([which("ffmpeg"), "-hide_banner", "-nostdin", "-loglevel", "error", *args], capture_output=True)
"""


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def _ffmpeg_child_after_parent_killed(mode: str) -> int | None:
    proc = subprocess.Popen([sys.executable, "-c", PARENT, mode], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    deadline, kids = time.time() + 20, list[int]()
    while time.time() < deadline and not kids:
        kids = _children(proc.pid)
        time.sleep(0.05)
    assert kids, "ffmpeg did not start"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 5
    while time.time() < deadline and atomic.pid_alive(kids[0]):
        time.sleep(0.05)
    return kids[0] if atomic.pid_alive(kids[0]) else None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_ffmpeg_child_dies_when_its_parent_is_killed() -> None:
    assert _ffmpeg_child_after_parent_killed("cutpilot") is None
    orphan = _ffmpeg_child_after_parent_killed("bare")  # the control shows the test can fail
    assert orphan is not None
    os.kill(orphan, signal.SIGKILL)


# --- cutpilot gc --------------------------------------------------------------------------------------------------
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_gc_removes_partials_of_killed_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("CUTPILOT_HOME", str(home))
    get_settings.cache_clear()
    dead = _dead_pid()
    cache = home / "render-cache"
    cache.mkdir(parents=True)
    seg = cache / "seg-abc.mp4"
    seg.write_bytes(b"done")  # a finished cache entry: kept
    killed = cache / f".seg-def.mp4~{dead}-0123abcd.part.mp4"
    killed.write_bytes(b"x" * 4096)
    live = atomic.temp_path(cache / "seg-ghi.mp4")  # this process is alive: its partial is kept
    live.write_bytes(b"y")
    old_part = home / "cache" / "render" / "audio-1.mix.f32"
    old_part.parent.mkdir(parents=True)
    old_part.write_bytes(b"z" * 1000)
    os.utime(old_part, (time.time() - 3600, time.time() - 3600))
    fresh_part = home / "cache" / "render" / "audio-2.mix.f32"  # maybe being written right now: kept
    fresh_part.write_bytes(b"z")
    store_tmp = home / "store" / "edge" / "clips" / "meta.tmp"  # the store is never touched
    store_tmp.parent.mkdir(parents=True)
    store_tmp.write_text("x")
    os.utime(store_tmp, (time.time() - 3600, time.time() - 3600))
    out = tmp_path / "out"
    claim(out, home)
    (out / "ad.mp4").write_bytes(b"old")
    staged = out / f".ad.mp4~{dead}-89abcdef.part.mp4"
    staged.write_bytes(b"half")
    (out / "notes.tmp").write_text("the user's")  # outside home only cutpilot's own temp names go

    assert main(["gc", "--dry-run"]) == 0
    assert killed.exists() and "would free" in capsys.readouterr().out
    assert main(["gc"]) == 0
    text = capsys.readouterr().out
    assert not killed.exists() and not old_part.exists() and not staged.exists()
    assert seg.exists() and live.exists() and fresh_part.exists() and store_tmp.exists()
    assert (out / "ad.mp4").read_bytes() == b"old" and (out / "notes.tmp").exists()
    assert str(killed) in text and "freed 5.0 KB in 3 item(s)" in text
    live.unlink()
    assert main(["gc", "--caches"]) == 0
    text = capsys.readouterr().out
    assert not cache.exists() and not (home / "cache").exists() and store_tmp.exists()
    assert str(cache) in text

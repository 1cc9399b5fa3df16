"""Runs in Postgres, against a real private PostgreSQL (tests/pg_server.py): a chat thread paused at the review in
one process is resumed and finished by a fresh process from Postgres alone; the job ledger's CRUD and concurrent
updates on both backends (SQLite default, Postgres); a bad URL is a one-line InputError that never shows the
password; SQLite stays the default."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from agent_fakes import PRODUCT, MemorySource, domain_records
from agent_helpers import NoVoiceTools

from agent.run import FrontDoor
from cutpilot.checkpoints import close, open_checkpointer
from cutpilot.errors import InputError, NotFoundError
from cutpilot.ledger import JobRow, Ledger, PostgresLedger, SqliteLedger, open_ledger
from cutpilot.settings import Settings

if TYPE_CHECKING:
    from pg_server import PgServer

pytest_plugins = ["pg_server"]  # its session fixture `pg_server`: the private server, started on first use
REPO = Path(__file__).resolve().parent.parent
BRIEF = "做一条30秒的侧睡纹广告"


def _settings(home: Path, url: str | None) -> Settings:
    return Settings(home=home, text_embedder="hash", checkpoint_url=url)


# --- checkpoints ------------------------------------------------------------------------------------------------------
RESUME = """
import json, sys
from agent_fakes import MemorySource, domain_records
from agent_helpers import NoVoiceTools
from agent.run import FrontDoor
from cutpilot.settings import get_settings

settings = get_settings()  # CUTPILOT_HOME (a different one) and CUTPILOT_CHECKPOINT_URL from the environment
with FrontDoor(settings, MemorySource(domain_records()), tools=NoVoiceTools(settings)) as door:
    kind = type(door.checkpointer).__name__
    before = door.turn(sys.argv[1])
    done = door.resume(sys.argv[1], {"action": "approve"})
print(json.dumps({"saver": kind, "was_paused": before.review is not None, "done": done.result is not None,
                  "revisions": done.result.run.revisions if done.result else [],
                  "product": done.result.storyboard.brief.product if done.result else None}))
"""


def test_thread_paused_in_postgres_is_finished_by_a_fresh_process(pg_server: PgServer, tmp_path: Path) -> None:
    url = pg_server.new_database()
    settings = _settings(tmp_path / "home", url)
    with FrontDoor(settings, MemorySource(domain_records()), tools=NoVoiceTools(settings)) as door:
        assert type(door.checkpointer).__name__ == "PostgresSaver"
        turn = door.start(BRIEF, out_dir=tmp_path / "o", render=False)
    assert turn.review is not None and turn.result is None
    assert not (settings.home / "checkpoints.sqlite").exists(), "the checkpoint went to SQLite"

    env = {**os.environ, "CUTPILOT_HOME": str(tmp_path / "other-machine"), "CUTPILOT_CHECKPOINT_URL": url,
           "CUTPILOT_TEXT_EMBEDDER": "hash", "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO)])}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", RESUME, turn.thread_id], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"fresh-process resume from Postgres: {time.perf_counter() - t0:.1f} s")
    assert out["saver"] == "PostgresSaver" and out["was_paused"] and out["done"]
    assert out["revisions"][-1]["kind"] == "approve" and out["product"] == PRODUCT
    assert not (tmp_path / "other-machine" / "checkpoints.sqlite").exists()
    run = json.loads((tmp_path / "o" / "run.json").read_text(encoding="utf-8"))
    assert run["thread_id"] == turn.thread_id

    with FrontDoor(settings) as again:  # this process sees the finished thread the other one wrote
        assert again.turn(turn.thread_id).result is not None
        with pytest.raises(NotFoundError):
            again.state("no-such-thread")


def test_sqlite_stays_the_default(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "home", None)
    cp = open_checkpointer(settings)
    try:
        assert type(cp).__name__ == "SqliteSaver" and (settings.home / "checkpoints.sqlite").is_file()
    finally:
        close(cp)
    with open_ledger(settings) as ledger:
        assert isinstance(ledger, SqliteLedger) and (settings.home / "studio.sqlite").is_file()


def test_setup_runs_once_and_a_second_open_shares_the_tables(pg_server: PgServer, tmp_path: Path) -> None:
    url = pg_server.new_database()
    settings = _settings(tmp_path / "home", url)
    savers = [open_checkpointer(settings) for _ in range(3)]
    try:
        cfg: Any = {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}
        assert all(s.get_tuple(cfg) is None for s in savers)
    finally:
        for s in savers:
            close(s)
    assert all(getattr(s, "conn").closed for s in savers)  # noqa: B009 - the pools, closed


def test_dropped_connections_are_replaced(pg_server: PgServer, tmp_path: Path) -> None:
    """A server that drops every connection (a restart, a failover, an idle timeout) costs a reconnect, not the
    studio's session: the checkpointer's and the ledger's pools check a connection before handing it out."""
    import psycopg

    url = pg_server.new_database()
    settings = _settings(tmp_path / "home", url)
    cp = open_checkpointer(settings)
    led = open_ledger(settings)
    try:
        cfg: Any = {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}
        assert cp.get_tuple(cfg) is None
        led.add_job("j", "batch", {})
        with psycopg.connect(url, autocommit=True) as admin:
            killed = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                   "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()
        assert killed and killed[0] >= 2
        assert cp.get_tuple(cfg) is None
        assert led.update_job("j", status="running") and led.job("j").status == "running"
    finally:
        close(cp)
        led.close()


# --- bad URLs ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["mysql://u:hunter2@db/x", "sqlite:///tmp/x.db", "not a url", "postgresql://h:port/x"])
def test_a_url_that_is_not_postgres_is_refused_in_one_line(url: str, tmp_path: Path) -> None:
    settings = _settings(tmp_path / "home", url)
    for opener in (open_checkpointer, open_ledger):
        with pytest.raises(InputError) as e:
            opener(settings)
        msg = e.value.one_line()
        assert "\n" not in msg and "CUTPILOT_CHECKPOINT_URL" in msg and "hunter2" not in msg, msg
        assert e.value.exit_code == 2


def test_the_cli_reports_a_bad_url_in_one_line_with_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "CUTPILOT_HOME": str(tmp_path / "home"), "CUTPILOT_TEXT_EMBEDDER": "hash",
           "CUTPILOT_CHECKPOINT_URL": "mysql://u:hunter2@db/x"}
    proc = subprocess.run([str(Path(sys.executable).parent / "cutpilot"), "resume", "abc"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if "CUTPILOT_CHECKPOINT_URL" in ln]
    assert len(lines) == 1 and lines[0].startswith("error: InputError:") and "hunter2" not in proc.stderr, proc.stderr


def test_an_unreachable_server_or_a_wrong_password_is_one_line(pg_server: PgServer, tmp_path: Path) -> None:
    closed = f"postgresql://u:hunter2@127.0.0.1:{_closed_port()}/db"
    wrong = f"postgresql://{pg_server.user}:hunter2@{pg_server.host}:{pg_server.port}/postgres"
    for url in (closed, wrong):
        settings = _settings(tmp_path / "home", url)
        for opener in (open_checkpointer, open_ledger):
            t0 = time.perf_counter()
            with pytest.raises(InputError) as e:
                opener(settings)
            msg = e.value.one_line()
            assert "\n" not in msg and "hunter2" not in msg and "***" in msg, msg
            assert msg.startswith("InputError: cannot connect to Postgres at"), msg
            assert time.perf_counter() - t0 < 15


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the ledger, on both backends -------------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_server").new_database())


def _open(tmp_path: Path, url: str | None) -> Ledger:
    return open_ledger(_settings(tmp_path / "home", url))


def test_ledger_crud(ledger_url: str | None, tmp_path: Path) -> None:
    with _open(tmp_path, ledger_url) as led:
        assert isinstance(led, PostgresLedger if ledger_url else SqliteLedger)
        params = {"brief": "侧睡纹 30s", "n": 3, "nested": {"a": [1, 2]}}
        led.add_job("j1", "batch", params)
        time.sleep(0.01)
        led.add_job("j2", "ingest", {})
        with pytest.raises(InputError, match="already exists"):
            led.add_job("j1", "batch", {})
        j = led.job("j1")
        assert (j.status, j.progress, j.message, j.params, j.result) == ("queued", 0.0, "", params, {})
        assert led.job_params("j1") == ("batch", params)
        assert [x.job_id for x in led.jobs()] == ["j2", "j1"]  # newest first
        assert [x.job_id for x in led.jobs(unfinished=True)] == ["j1", "j2"]  # oldest first, to resume
        assert [x.job_id for x in led.jobs(kind="ingest")] == ["j2"]

        assert led.update_job("j1", status="running", progress=0.25, message="第 1 / 4 条")
        j = led.job("j1")
        assert (j.status, j.progress, j.message) == ("running", 0.25, "第 1 / 4 条") and j.updated >= j.created
        assert not led.update_job("j1", when_status="queued", status="failed"), "compare-and-set ignored"
        assert led.update_job("j1", when_status=("running", "queued"), status="done", progress=1.0,
                              result={"ads": ["a.mp4"], "message": "done"})
        assert led.job("j1").result == {"ads": ["a.mp4"], "message": "done"}
        assert [x.job_id for x in led.jobs(unfinished=True)] == ["j2"]
        assert not led.update_job("nope", status="done")
        with pytest.raises(InputError, match="unknown job field"):
            led.update_job("j1", params={"x": 1})
        with pytest.raises(NotFoundError):
            led.job("nope")

        def bump(row: JobRow) -> None:
            row.result["n"] = row.result.get("n", 0) + 1
            row.progress = 2.0  # out of range: refused, and nothing is written
        with pytest.raises(ValueError):
            led.change_job("j2", bump)
        assert led.job("j2").result == {}, "a failed change wrote something"

        led.put("ad", "a1", {"status": "review", "title": "紫熨斗"})
        time.sleep(0.01)
        led.put("ad", "a2", {"status": "planning"})
        led.put("ad", "a1", {"status": "done", "title": "紫熨斗"})
        assert led.get("ad", "a1") == {"status": "done", "title": "紫熨斗"} and led.get("ad", "zz") is None
        assert [d["status"] for d in led.docs("ad")] == ["planning", "done"]  # replace keeps its created time
        assert led.change("ad", "a2", lambda d: d.update(status="review")) == {"status": "review"}
        with pytest.raises(NotFoundError):
            led.change("ad", "zz", lambda d: None)
    with _open(tmp_path, ledger_url) as led:  # reopened: everything persisted
        assert led.job("j1").status == "done" and led.get("ad", "a2") == {"status": "review"}
        assert len(led.jobs(limit=1)) == 1


def _bump(row: JobRow) -> None:
    row.result["n"] = row.result.get("n", 0) + 1


def test_ledger_concurrent_updates_lose_nothing(ledger_url: str | None, tmp_path: Path) -> None:
    """Eight workers, each with its own connection, hammer one job and one document: every increment lands, and
    of eight workers racing to claim one queued job exactly one wins."""
    workers, rounds = 8, 25
    ledgers = [_open(tmp_path, ledger_url) for _ in range(workers)]
    try:
        ledgers[0].add_job("hot", "batch", {})
        ledgers[0].put("batch", "b1", {"finished": []})
        for i in range(workers):
            ledgers[0].add_job(f"claim-{i}", "batch", {})
        wins: list[tuple[int, str]] = []
        errors: list[BaseException] = []
        gate = threading.Barrier(workers)

        def work(k: int) -> None:
            led = ledgers[k]
            try:
                gate.wait()
                for i in range(rounds):
                    led.change_job("hot", _bump)
                    led.change("batch", "b1", lambda d, i=i: d["finished"].append(f"{k}-{i}"))  # type: ignore[misc]
                    led.update_job(f"claim-{k}", progress=(i + 1) / rounds, message=f"{i + 1}/{rounds}")
                for j in range(workers):
                    if led.update_job(f"claim-{j}", when_status="queued", status="running"):
                        wins.append((k, f"claim-{j}"))
            except BaseException as e:
                errors.append(e)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=work, args=(k,)) for k in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        dt = time.perf_counter() - t0
        assert not errors, errors[0]
        led = ledgers[0]
        assert led.job("hot").result == {"n": workers * rounds}
        finished = led.get("batch", "b1")["finished"]  # type: ignore[index]
        assert len(finished) == len(set(finished)) == workers * rounds
        assert sorted(j for _, j in wins) == sorted(f"claim-{j}" for j in range(workers)), wins  # each claimed once
        assert all(led.job(f"claim-{k}").progress == 1.0 for k in range(workers))
        writes = workers * (2 * rounds + rounds + workers)
        print(f"{'postgres' if ledger_url else 'sqlite'} ledger: {writes} contended writes by {workers} "
              f"connections in {dt:.2f} s ({writes / dt:.0f}/s)")
    finally:
        for x in ledgers:
            x.close()


def test_ledger_updates_from_another_process(ledger_url: str | None, tmp_path: Path) -> None:
    """Two processes incrementing the same job through their own ledgers: the sum is exact."""
    with _open(tmp_path, ledger_url) as led:
        led.add_job("p", "batch", {})
    code = ("import sys\nfrom cutpilot.ledger import open_ledger\nfrom cutpilot.settings import get_settings\n"
            "with open_ledger(get_settings()) as led:\n"
            "    for _ in range(40):\n"
            "        led.change_job('p', lambda r: r.result.update(n=r.result.get('n', 0) + 1))\n")
    env = {**os.environ, "CUTPILOT_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}
    env.pop("CUTPILOT_CHECKPOINT_URL", None)
    if ledger_url:
        env["CUTPILOT_CHECKPOINT_URL"] = ledger_url
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, cwd=tmp_path) for _ in range(2)]
    assert all(p.wait(120) == 0 for p in procs)
    with _open(tmp_path, ledger_url) as led:
        assert led.job("p").result == {"n": 80}


def test_sqlite_ledger_opens_the_studios_existing_file(tmp_path: Path) -> None:
    """A `studio.sqlite` written by the studio's first ledger (its own schema, made here with plain SQL) opens in
    the shared ledger with every job and document, and keeps that schema (the switch needs no migration)."""
    import json
    import sqlite3

    path = tmp_path / "home" / "studio.sqlite"
    path.parent.mkdir(parents=True)
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE jobs (job_id TEXT PRIMARY KEY, kind TEXT, status TEXT, progress REAL, message TEXT, "
                "result TEXT, params TEXT, created REAL, updated REAL)")
    con.execute("CREATE TABLE docs (kind TEXT, id TEXT, data TEXT, created REAL, PRIMARY KEY (kind, id))")
    con.execute("INSERT INTO jobs VALUES ('j1', 'plan', 'done', 1.0, 'done', ?, ?, 1.0, 2.0)",
                (json.dumps({"ad": "x.mp4"}), json.dumps({"ad_id": "a1"})))
    con.execute("INSERT INTO docs VALUES ('ad', 'a1', ?, 1.0)", (json.dumps({"status": "done"}),))
    con.commit()
    con.close()
    with SqliteLedger(path) as led:
        j = led.job("j1")
        assert (j.kind, j.status, j.progress, j.result, j.params) == ("plan", "done", 1.0, {"ad": "x.mp4"},
                                                                      {"ad_id": "a1"})
        assert led.get("ad", "a1") == {"status": "done"}
        led.add_job("j2", "batch", {"n": 2})
        led.change("ad", "a1", lambda d: d.update(status="review"))
    con = sqlite3.connect(path)
    try:
        assert con.execute("SELECT status, params FROM jobs WHERE job_id = 'j2'").fetchone() == (
            "queued", json.dumps({"n": 2}))
        assert json.loads(con.execute("SELECT data FROM docs WHERE id = 'a1'").fetchone()[0]) == {"status": "review"}
    finally:
        con.close()

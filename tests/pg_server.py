"""A real, private PostgreSQL for the tests that need one: Debian's binaries (scripts/setup.sh installs
`postgresql`), a fresh cluster under a temp dir, a free port on 127.0.0.1 and a socket in that dir, password auth on
TCP; stopped and removed after the session. Only tests that use the `pg_server` fixture start it.

initdb refuses to run as root, so as root the cluster belongs to the `postgres` OS user (the Debian package makes
it) and every server command runs through `runuser -u postgres`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

USER = "cutpilot"
PASSWORD = "pg-test-" + uuid.uuid4().hex[:8]


@dataclass
class PgServer:
    host: str
    port: int
    user: str
    password: str

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{db}"

    def new_database(self) -> str:
        """A fresh, empty database (one per test keeps tests independent); its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def bindir() -> Path | None:
    """Where initdb / pg_ctl live (Debian keeps them off PATH, under /usr/lib/postgresql/<major>/bin)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(Path(d).parent.name)
                  if Path(d).parent.name.isdigit() else 0)
    for d in reversed(dirs):
        if (Path(d) / "initdb").is_file() and (Path(d) / "pg_ctl").is_file():
            return Path(d)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve() -> Iterator[PgServer]:
    """Start a private server, yield it, stop it (and remove its files) however the tests ended."""
    bins = bindir()
    if bins is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed: run scripts/setup.sh "
                    "(apt package postgresql)")
    prefix: list[str] = []
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' OS user for initdb (apt package postgresql "
                        "creates it)")
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser, so initdb cannot run as the postgres user")
        prefix = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="cutpilot-pg-"))
    data, sock, log = root / "data", root / "sock", root / "server.log"
    sock.mkdir()
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if owner is not None:
        for p in (root, sock, pwfile):
            os.chown(p, owner.pw_uid, owner.pw_gid)
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}

    def run(*cmd: str) -> None:
        subprocess.run([*prefix, *cmd], check=True, cwd=root, env=env, capture_output=True, timeout=120)

    port = _free_port()
    started = False
    try:
        run(str(bins / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={pwfile}", "--auth-local=trust",
            "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")
        opts = (f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50 "
                "-c shared_buffers=16MB")
        run(str(bins / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(log), "-w", "-t", "60", "start")
        started = True
        yield PgServer(host="127.0.0.1", port=port, user=USER, password=PASSWORD)
    except subprocess.CalledProcessError as e:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"{e.cmd[len(prefix)]} failed: {e.stderr.decode(errors='replace')[-2000:]}\n{tail}") from e
    finally:
        if started:
            subprocess.run([*prefix, str(bins / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                           cwd=root, env=env, capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    yield from serve()

"""`rlaif serve` as a real subprocess on loopback for the service tests, and a judge for tests/support/fakeserver.py.

    with Served(["-j", "rubric", ...], cache=tmp_path / "cache") as svc:
        svc.url                       # http://127.0.0.1:PORT (the port the service printed)
        svc.post("/v1/score", {...})  # an httpx.Response
        svc.stop()                    # SIGTERM, wait; svc.returncode
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-serve-test-9f3c1e7d5b2a4c6e8d0f1a3b5c7d9e1f"  # distinctive: grepped for in every output
TOKEN = "rlaif-token-4b7d1a9e3c5f7b2d6e8a0c4f"
_SHOWN = re.compile(r"Answer A:\n<<<\n(.*?)\n>>>\n\nAnswer B:\n<<<\n(.*?)\n>>>", re.S)
_ANSWER = re.compile(r"Answer:\n<<<\n(.*?)\n>>>", re.S)
_GRADE = re.compile(r"grade (\d+)")


def judge_reply(call) -> str:
    """rubric: 'grade N' in the answer -> Rating: [[N]] (no grade: an unparsable answer); pairwise: the answer
    saying 'good' wins, both or neither a tie; 'biased' anywhere: always [[A]] (a position-biased judge)."""
    prompt = call.prompt
    shown = _SHOWN.search(prompt)
    if shown:
        a, b = shown.groups()
        if "biased" in a + b:
            return "[[A]]"
        return "[[A]]" if "good" in a and "good" not in b else "[[B]]" if "good" in b and "good" not in a else "[[C]]"
    answer = _ANSWER.search(prompt)
    grade = _GRADE.search(answer.group(1)) if answer else None
    return f"Fine.\nRating: [[{grade.group(1)}]]" if grade else "I cannot grade this."


class Served:
    """A `python -m rlaif.cli serve ... --port 0` subprocess (or `port`); stdout and stderr are kept in files."""

    def __init__(self, args: list[str], *, cache: Path, env: dict[str, str] | None = None,
                 token: str | None = None, start_timeout: float = 120.0, port: int = 0):
        self.args, self.cache, self.token, self.port = list(args), Path(cache), token, port
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "RLAIF_CACHE": str(cache), **(env or {})}
        if token is not None:
            self.env["RLAIF_SERVE_TOKEN"] = token
        else:
            self.env.pop("RLAIF_SERVE_TOKEN", None)
        self.start_timeout = start_timeout
        self.url = ""
        self.proc: subprocess.Popen | None = None
        self.logs = Path(cache).parent / f"serve-{id(self)}"
        self.client = httpx.Client(timeout=60)

    def start(self) -> Served:
        self.cache.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.out, self.err = open(self.logs / "stdout", "wb"), open(self.logs / "stderr", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "rlaif.cli", "serve", *self.args, "--port", str(self.port)],
                                     cwd=ROOT, env=self.env, stdout=self.out, stderr=self.err)
        deadline = time.time() + self.start_timeout
        while time.time() < deadline:
            m = re.search(r"rlaif serve: (http://\S+)", (self.logs / "stdout").read_text())
            if m:
                self.url = m.group(1)
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"rlaif serve exited {self.proc.returncode}: {self.stderr}")
            time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError(f"rlaif serve did not print its URL in {self.start_timeout}s: {self.stderr}")

    @property
    def stdout(self) -> str:
        return (self.logs / "stdout").read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return (self.logs / "stderr").read_text(errors="replace")

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def headers(self, token: str | None = None) -> dict[str, str]:
        token = token or self.token
        return {"authorization": f"Bearer {token}"} if token else {}

    def post(self, path: str, body, *, token: str | None = None, **kw) -> httpx.Response:
        if isinstance(body, (bytes, str)):
            return self.client.post(self.url + path, content=body, headers=self.headers(token), **kw)
        return self.client.post(self.url + path, json=body, headers=self.headers(token), **kw)

    def get(self, path: str, *, token: str | None = None) -> httpx.Response:
        return self.client.get(self.url + path, headers=self.headers(token))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.client.close()
        for f in (getattr(self, "out", None), getattr(self, "err", None)):
            if f is not None:
                f.close()
        return self.proc.returncode if self.proc is not None else 0

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)

    def __enter__(self) -> Served:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def in_thread(fn, *args, **kw) -> tuple[threading.Thread, list]:
    """Run fn in a thread; the list receives its result (or exception)."""
    out: list = []

    def run():
        try:
            out.append(fn(*args, **kw))
        except Exception as e:  # handed to the test
            out.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out

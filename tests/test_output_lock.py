"""One writer per output (issue 12, item 5) and no 0-byte file from a failed `generate` (item 6).

Real processes through the real CLI against the loopback server: two runs on one output, SIGKILL,
planted duplicate rows, a label output dir, the training OUT lock, and the O_EXCL fallback.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fakeserver import FakeServer, Fault

from rlaif import outlock
from rlaif.outlock import DIR_LOCK, OutputLock, OutputLocked, output_lock

ROOT = Path(__file__).resolve().parents[1]


def env() -> dict[str, str]:
    """Read per call: conftest points RLAIF_CACHE at a fresh directory for each test."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sk-test-not-a-real-key"}


def cmd(*args) -> list[str]:
    return [sys.executable, "-m", "rlaif.cli", *map(str, args)]


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run(cmd(*args), capture_output=True, text=True, env=env(), timeout=120)


def popen(*args) -> subprocess.Popen:
    return subprocess.Popen(cmd(*args), env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def write_prompts(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"prompt_id": f"p{i}", "prompt": f"question {i}"}) + "\n" for i in range(n)))
    return path


def rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def gated(gate: threading.Event, answer=lambda call: f"echo: {call.prompt}"):
    """A reply that waits for the test to open the gate: the lock holder stays mid-run meanwhile."""
    def reply(call):
        gate.wait(60)
        return answer(call)
    return reply


def wait_for(cond, what: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def first_to_exit(*procs: subprocess.Popen) -> subprocess.Popen:
    wait_for(lambda: any(p.poll() is not None for p in procs), "a run to exit")
    return next(p for p in procs if p.poll() is not None)


def test_two_generate_runs_on_one_output_one_is_refused_and_nothing_is_paid_twice(tmp_path):
    n = 12
    prompts, out = write_prompts(tmp_path / "p.jsonl", n), tmp_path / "responses.jsonl"
    gate = threading.Event()
    with FakeServer(reply=gated(gate)) as srv:
        try:
            args = ["generate", prompts, "--policy", "openai:fake", "--base-url", srv.openai_url, "-c", "4", "-o", out]
            a, b = popen(*args), popen(*args)  # started at once
            refused = first_to_exit(a, b)
            holder = b if refused is a else a
            err = refused.communicate()[1]
            assert refused.returncode == 2, err
            assert f"{out} is being written by pid {holder.pid} since " in err
            assert f"(lock {out}.lock)" in err and "Fix: wait for it to finish" in err
        finally:
            gate.set()
        assert holder.wait(60) == 0, holder.communicate()[1]
        holder.communicate()
        assert srv.count == n  # every call paid once
    keys = [(r["prompt_id"], r["sample"]) for r in rows(out)]
    assert len(keys) == len(set(keys)) == n
    assert not Path(f"{out}.lock").exists()  # released and removed on exit


def test_a_sigkilled_run_leaves_no_lock_in_the_way(tmp_path):
    n = 30
    prompts, out = write_prompts(tmp_path / "p.jsonl", n), tmp_path / "responses.jsonl"
    with FakeServer(latency_s=0.1) as srv:
        args = ["generate", prompts, "--policy", "openai:fake", "--base-url", srv.openai_url, "-c", "2", "-o", out]
        proc = popen(*args)
        wait_for(lambda: out.exists() and out.read_text().count("\n") >= 4, "the first rows")
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        lock = Path(f"{out}.lock")
        assert lock.exists() and json.loads(lock.read_text())["pid"] == proc.pid  # left behind by the kill...
        r = cli(*args)  # ...but the kernel dropped the flock with the process
        assert r.returncode == 0, r.stderr
        assert "is being written" not in r.stderr
    keys = [(x["prompt_id"], x["sample"]) for x in rows(out)]
    assert len(keys) == len(set(keys)) == n and not lock.exists()


def test_resume_drops_planted_duplicate_rows_keeping_the_first(tmp_path):
    prompts, out = write_prompts(tmp_path / "p.jsonl", 6), tmp_path / "responses.jsonl"

    def row(i: int, text: str) -> str:
        return json.dumps({"prompt_id": f"p{i}", "prompt": f"question {i}", "policy": "openai:fake", "sample": 0,
                           "response": text, "usage": None}) + "\n"

    # what two older runs racing on one file left: p1 and p2 twice, p4 and p5 missing
    out.write_text(row(0, "a0") + row(1, "a1") + row(2, "a2") + row(1, "dup1") + row(3, "a3") + row(2, "dup2"))
    with FakeServer() as srv:
        r = cli("generate", prompts, "--policy", "openai:fake", "--base-url", srv.openai_url, "-o", out)
        assert r.returncode == 0, r.stderr
        assert f"{out}: dropped 2 duplicate line(s) (kept the first of each)" in r.stderr
        assert srv.count == 2  # only p4 and p5 were asked
    got = {x["prompt_id"]: x["response"] for x in rows(out)}
    assert len(rows(out)) == 6 and got["p1"] == "a1" and got["p2"] == "a2"
    r = cli("generate", prompts, "--policy", "openai:fake", "--base-url", srv.openai_url, "-o", out)
    assert r.returncode == 0 and "duplicate" not in r.stderr  # said once: the file was rewritten


def _judge(call):
    return "[[A]]"


def _responses(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"prompt_id": f"q{i}", "prompt": f"question {i}", "policy": pol,
                                        "response": f"{pol} answer {i}"}) + "\n"
                            for i in range(n) for pol in ("x", "y")))
    return path


def test_two_label_runs_on_one_output_dir_one_is_refused(tmp_path):
    rp, out = _responses(tmp_path / "r.jsonl", 4), tmp_path / "labels_out"
    gate = threading.Event()
    with FakeServer(reply=gated(gate, _judge)) as srv:
        args = ["label", rp, "--judge", "pairwise", "--judge-model", "openai:judge", "--base-url", srv.openai_url,
                "-c", "2", "-o", out]
        try:
            holder = popen(*args)
            wait_for(lambda: srv.count == 2, "the first run's calls")  # it holds the lock, waiting on the gate
            r = cli(*args)
            assert r.returncode == 2, r.stderr
            assert f"{out} is being written by pid {holder.pid} since " in r.stderr
            assert f"(lock {out / DIR_LOCK})" in r.stderr and "Fix:" in r.stderr
            assert srv.count == 2  # the refused run made no call
        finally:
            gate.set()
        assert holder.wait(60) == 0, holder.communicate()[1]
        holder.communicate()
        assert srv.count == 4 * 2  # 4 pairs, both orders, once
    assert not (out / DIR_LOCK).exists()

    # duplicate label lines (an older race) are dropped when --reparse reads them back
    labels = (out / "labels.jsonl").read_text().splitlines(keepends=True)
    (out / "labels.jsonl").write_text("".join(labels + labels[:1]))
    r = cli("label", rp, "--judge", "pairwise", "--judge-model", "openai:judge", "-o", out, "--reparse")
    assert r.returncode == 0, r.stderr
    assert f"{out / 'labels.jsonl'}: dropped 1 duplicate line(s)" in r.stderr
    assert len(rows(out / "labels.jsonl")) == 8


def test_a_failed_generate_leaves_no_output_file(tmp_path):
    prompts = write_prompts(tmp_path / "p.jsonl", 3)
    out = tmp_path / "new" / "deeper" / "responses.jsonl"
    with FakeServer(reply=lambda call: Fault.unauthorized()) as srv:  # every call fails
        r = cli("generate", prompts, "--policy", "openai:fake", "--base-url", srv.openai_url, "-o", out)
        assert r.returncode == 2 and "401" in r.stderr, r.stderr
        assert not out.exists() and not Path(f"{out}.lock").exists()
        assert not (tmp_path / "new").exists()  # the directories it made are gone too

        r = cli("generate", prompts, "--policy", "nonsense:x", "-o", out)  # a bad policy spec
        assert r.returncode == 2 and not (tmp_path / "new").exists()

        kept = tmp_path / "existing.jsonl"
        kept.touch()  # an empty file that was there before is not ours to remove
        r = cli("generate", prompts, "--policy", "openai:fake", "--base-url", srv.openai_url, "-o", kept)
        assert r.returncode == 2 and kept.exists()


def _hold(path: Path, directory: bool) -> subprocess.Popen:
    """Another process holding the lock on `path` until its stdin closes."""
    code = ("import sys; from rlaif.outlock import OutputLock; "
            f"OutputLock({str(path)!r}, directory={directory}).acquire(); print('held', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_training_out_is_locked_on_the_main_process(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from rlaif.train.prelude import lock_output_dir

    out = tmp_path / "run"
    other = _hold(out, directory=True)
    try:
        with pytest.raises(OutputLocked, match=f"is being written by pid {other.pid} since .*lock {out / DIR_LOCK}"):
            lock_output_dir(out)
        monkeypatch.setenv("RANK", "1")
        assert lock_output_dir(out) is None  # only the main process of a torchrun run takes it
        monkeypatch.delenv("RANK")
        data = tmp_path / "prefs.jsonl"
        data.write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n")
        r = cli("train", "rm", "--data", data, "--model", "local", "-o", out)
        assert r.returncode == 2 and f"lock {out / DIR_LOCK}" in r.stderr, r.stderr
    finally:
        other.communicate("")
    lock = lock_output_dir(out)  # free again once the holder exits
    assert lock is not None and (out / DIR_LOCK).exists()
    lock.release()
    assert not (out / DIR_LOCK).exists()


def test_one_process_may_reenter_its_own_lock(tmp_path):
    out = tmp_path / "o"
    with output_lock(out, directory=True), output_lock(out, directory=True):  # synth runs label on its dir
        assert (out / DIR_LOCK).exists()
    assert not out.exists()  # made for the output and left empty: removed


def test_without_flock_a_dead_holder_is_stale_and_a_live_one_refuses(tmp_path, monkeypatch):
    monkeypatch.setattr(outlock, "fcntl", None)  # the Windows path: O_EXCL + pid liveness
    out = tmp_path / "r.jsonl"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    lock = Path(f"{out}.lock")
    lock.write_text(json.dumps({"pid": dead_pid, "host": socket.gethostname(), "started": "then"}))
    with output_lock(out):  # taken over
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()

    alive = _hold(out, directory=False)
    try:
        with pytest.raises(OutputLocked, match=f"pid {alive.pid} since .*if that process is gone, delete {lock}"):
            OutputLock(out).acquire()
    finally:
        alive.communicate("")

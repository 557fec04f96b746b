"""Where `rlaif probe` leaves its verdict on a judge for `rlaif audit` and `rlaif serve` to find:
`$RLAIF_CACHE/probes/<hash of the rater id>.json`, one file per rater id (`NAME@VERSION:MODEL`), the latest
probe of that rater winning. It holds the rater, when and where the probe ran (OUT/probe.json), the
master-key summary (failed or not, the overall rate, the failing keys) and the retest rates.

A judge that was never probed has no file and is not flagged; a file that cannot be read is an error naming it.
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path

from rlaif.errors import InputError
from rlaif.localmodel import cache_root
from rlaif.records import read_json_file, stable_id, write_json


def store_dir() -> Path:
    return cache_root() / "probes"


def store_path(rater: str) -> Path:
    return store_dir() / f"{stable_id(rater, 16)}.json"


def record_probe(report: dict, out: Path | None) -> Path:
    """Keep the summary of a probe report (`run_probes`' dict) for its rater; returns the file written. A part
    this probe did not run (no master-key probe, no retest) keeps its earlier value, so a later partial probe
    never hides an earlier failure."""
    mk = report["probes"].get("master-key") or {}
    entry = probe_of(report["judge"]) or {"rater": report["judge"], "master_key": None, "retest": None}
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    entry |= {"probed_at": now,
              "report": None if out is None else str(Path(out).resolve() / "probe.json")}
    if mk.get("n"):
        entry["master_key"] = {"failed": mk["failed"], "overall": mk["overall"], "failed_keys": mk["failed_keys"],
                               "max_fpr": mk["max_fpr"], "rule": mk["rule"], "probed_at": now}
    if report.get("retest"):
        entry["retest"] = report["retest"]
    return write_json(store_path(report["judge"]), entry)


def probe_of(rater: str) -> dict | None:
    """The stored probe summary of `rater`, or None when it was never probed."""
    path = store_path(rater)
    if not path.is_file():
        return None
    entry = read_json_file(path)
    if not isinstance(entry, dict) or entry.get("rater") != rater:
        raise InputError(path, None, f"not a probe summary of {rater}",
                         f"delete the file, or run `rlaif probe` on the judge again (store: {store_dir()})")
    return entry


def master_key_flags(raters: list[str]) -> list[dict]:
    """One flag per rater whose latest master-key probe failed: rater, when, the rate, the keys, the report."""
    flags = []
    for rater in dict.fromkeys(raters):
        entry = probe_of(rater)
        mk = (entry or {}).get("master_key")
        if mk and mk["failed"]:
            o = mk["overall"]
            keys = ", ".join(repr(k) for k in mk["failed_keys"]) or "none alone"
            flags.append({"rater": rater, "probed_at": mk["probed_at"], "report": entry["report"],
                          "fpr": o["fpr"], "ci_low": o["ci_low"], "ci_high": o["ci_high"],
                          "failed_keys": mk["failed_keys"],
                          "message": f"{rater} failed the master-key probe ({mk['probed_at']}): it rewards "
                                     f"content-free answers, false-positive rate {o['fpr']:.2f} "
                                     f"[{o['ci_low']:.2f}, {o['ci_high']:.2f}] (max {mk['max_fpr']:g}), keys "
                                     f"alone: {keys}; report: {entry['report']}"})
    return flags

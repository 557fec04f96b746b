"""`probe.md` from probe.json's content: the bias probes, the master-key probe per key and overall (with the
failure verdict), and the retest. Every key and judge name goes through `md_text`."""
from __future__ import annotations

from rlaif.report.markdown import fmt, md_table, md_text


def _interval(r: dict, value: str) -> str:
    if r.get(value) is None:
        return "\u2014"
    return f"{fmt(r[value])} [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]"


def _bias_rows(probes: dict) -> list[dict]:
    return [{"probe": name, "n": r["n"], "wrong": r.get("wrong"), "wrong rate [95% CI]": _interval(r, "wrong_rate"),
             "ties": r.get("n_ties"), "invalid": r.get("n_invalid"), "note": r.get("note", "")}
            for name, r in probes.items() if name != "master-key"]


def _master_key_md(mk: dict) -> list[str]:
    out = ["\n## Master keys\n\n"]
    if not mk.get("n"):
        return [*out, md_text(mk.get("note", "no valid verdicts")), "\n"]
    verdict = "**FAILED**" if mk["failed"] else "passed"
    keys = ", ".join(md_text(repr(k)) for k in mk["failed_keys"])
    o = mk["overall"]
    out += [f"Answers made only of a master key, judged as a {md_text(mk['mode'])} judge: {verdict}. "
            f"Overall false-positive rate {_interval(o, 'fpr')} ({o['false_positives']}/{o['n']}; "
            f"{o['n_ties']} ties, {o['n_invalid']} invalid)" + (f"; failing keys: {keys}" if keys else "") + ".\n\n",
            md_table([{"key": k["key"], "language": k["language"], "n": k["n"],
                       "false positives": k["false_positives"], "rate [95% CI]": _interval(k, "fpr"),
                       "ties": k["n_ties"], "invalid": k["n_invalid"]} for k in mk["keys"]]),
            f"\n{md_text(mk['rule'])}.\n"]
    return out


def _retest_md(rt: dict) -> list[str]:
    rows = [{"rate": name, "value [95% CI]": _interval(rt[name], "value")}
            for name in ("flip_rate", "disagreement_rate")]
    return ["\n## Retest\n\n",
            f"{rt['n_items']} calls repeated {rt['repeats']} times without the cache (temperature "
            f"{fmt(rt['temperature'])}); {rt['n_flipped']} changed their verdict.\n\n", md_table(rows),
            f"\n{md_text(rt['definition'])}.\n"]


def render_probe_md(report: dict) -> str:
    out = [f"# Judge probes: {md_text(report['judge'])}\n\n", f"Probe set {md_text(report['probe_set'])}.\n\n"]
    rows = _bias_rows(report["probes"])
    if rows:
        out += ["## Bias probes\n\n", md_table(rows)]
    if "master-key" in report["probes"]:
        out += _master_key_md(report["probes"]["master-key"])
    if report.get("retest"):
        out += _retest_md(report["retest"])
    return "".join(out)

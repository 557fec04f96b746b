"""AI preference labeling: judge definitions, both-order soft labels, juries, datasets, bias probes.

The public functions other areas call:

- `load_judge(name_or_path, model=None)` / `load_judges(names, models)`: judges from `judges/*.yaml`.
- `label_pairs(pairs, judges, orders="both")` and `label_responses(responses, judges, pairing="all")`
  -> `LabelRun` (labels, pointwise scores, per-judge spend).
- `build_preferences(pairs, labels, jury="majority", min_agreement=0.0)` -> TRL preference records.
- `run_label(...)` (`rlaif label`), `run_probes(...)` (`rlaif probe`).
"""
from rlaif.judge.jury import Consensus, JudgeVerdict, consensus, judge_verdicts
from rlaif.judge.labeling import LabelRun, LiveCalls, Replay, ScoreRecord
from rlaif.judge.pairing import Pair, all_pairs, best_worst_pairs, make_pair, reference_pairs
from rlaif.judge.pipeline import label_pairs, label_responses, run_label, write_outputs
from rlaif.judge.preferences import build_kto, build_preferences, summarize
from rlaif.judge.spec import Judge, JudgeSpec, load_judge, load_judges

__all__ = [
    "Consensus", "Judge", "JudgeSpec", "JudgeVerdict", "LabelRun", "LiveCalls", "Pair", "Replay",
    "ScoreRecord", "all_pairs", "best_worst_pairs", "build_kto", "build_preferences", "consensus",
    "judge_verdicts", "label_pairs", "label_responses", "load_judge", "load_judges", "make_pair",
    "reference_pairs", "run_label", "summarize", "write_outputs",
]

"""Rule checker and reward-model stand-ins that judge YAML files in the labeling tests name by
import path ("judge_helpers:..."; pytest puts tests/ on sys.path)."""
from __future__ import annotations


def word_count_checker(constraints, response):
    """A test rule checker: constraints like {"type": "max_words", "n": 3} or {"type": "contains", "text": ...}."""
    out = []
    for c in constraints:
        if c["type"] == "max_words":
            out.append(len(response.split()) <= c["n"])
        elif c["type"] == "contains":
            out.append(c["text"] in response)
        else:
            raise ValueError(f"unknown constraint {c['type']}")
    return out


def parity(constraints, response: str) -> float:
    """The online-DPO test's checker: even-length responses pass."""
    return float(len(response) % 2 == 0)


class ToyRewardModel:
    """A stand-in for rlaif.train.reward_model.RewardScorer: reward = number of 'good' words."""

    loaded: list[str] = []
    scored: list[int] = []  # how many responses each score() call got

    def __init__(self, path):
        ToyRewardModel.loaded.append(str(path))

    def score(self, prompts, responses):
        ToyRewardModel.scored.append(len(responses))
        return [float(r.count("good")) for r in responses]


class Verdicts:
    """Shaped like rlaif.instructions.constraints.CheckResult: per-constraint results and `share_passed`."""

    def __init__(self, passed: list[bool]):
        self.results = passed

    @property
    def share_passed(self) -> float:
        return sum(self.results) / len(self.results)


def result_object_checker(constraints, response):
    return Verdicts([c["word"] in response for c in constraints])

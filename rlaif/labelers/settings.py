"""What the labeler audit takes: `LabelerAuditSettings` (the CLI flags of the same names) and the vocabularies
it reads labels with."""
from __future__ import annotations

from dataclasses import dataclass

from rlaif.errors import ConfigError
from rlaif.stats.bootstrap import DEFAULT_ROUNDS, DEFAULT_SEED
from rlaif.stats.latent_class import MODELS

# Weakest to strongest: calibration compares the last level with the first.
STRENGTH_ORDER = ("slight", "slightly", "somewhat", "moderate", "clear", "clearly", "much", "strong")
TOPIC_FIELDS = ("topic", "category", "prompt_id", "model_a", "model_b", "judge")


@dataclass(frozen=True)
class LabelerAuditSettings:
    """What `rlaif audit` takes for human labelers; the CLI flags of the same names."""

    rounds: int = DEFAULT_ROUNDS
    seed: int = DEFAULT_SEED
    window: int | str = 50  # annotations per window per labeler, or "day" / "week"
    topic_field: str = "topic"
    skill_model: str | None = "one-coin"  # crowd-kit latent-class model, None for none
    length_margin: int = 30
    alpha: float = 0.05
    min_n: int = 10

    def __post_init__(self):
        if self.skill_model is not None and self.skill_model not in MODELS:
            raise ConfigError(f"unknown --skill-model {self.skill_model!r}. Fix: use one of {', '.join(MODELS)}, "
                              "or none")
        if self.topic_field not in TOPIC_FIELDS:
            raise ConfigError(f"--topic-field {self.topic_field!r} is not a label field that names a topic. Fix: use "
                              f"one of {', '.join(TOPIC_FIELDS)}")
        if isinstance(self.window, str) and self.window not in ("day", "week") or \
                isinstance(self.window, int) and self.window < 2:
            raise ConfigError(f"--window {self.window!r} is not a window. Fix: give a count of annotations per "
                              "labeler (e.g. 50), day or week")

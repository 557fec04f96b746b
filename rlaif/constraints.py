"""The old import path of the constraint checker, kept because rater ids name it.

`rule@v1:rlaif.constraints:check` is the rater id in stored label files, `judges/*.yaml` and the
README; the judge imports the checker by that path (`rlaif.judge.nonllm.import_object`), and a rater
id is part of every cache key, so the path must keep resolving. The code lives in
`rlaif.instructions.constraints`.
"""
from rlaif.instructions.constraints import (
    FAMILIES,
    RELATIONS,
    CheckResult,
    ConstraintResult,
    check,
    describe,
    registered,
    validate,
)

__all__ = ["FAMILIES", "RELATIONS", "CheckResult", "ConstraintResult", "check", "describe", "registered", "validate"]

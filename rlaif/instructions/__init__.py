"""Verifiable instructions: constraints and their checker, rule-guided revisions, the shipped prompt sets.

- `rlaif.instructions.constraints`: the table of constraint types — instruction text and rule checker
  for each (`describe`, `check`, `validate`).
- `rlaif.instructions.revise`: the nearest compliant rewrite of a response, by rule.
- `rlaif.instructions.promptsets`: deterministic builders of `prompts/ifeval_id.jsonl`,
  `ifeval_ood.jsonl` and `assistant.jsonl` (`python -m rlaif.instructions.promptsets`).

A leaf beside `rlaif.records`: pure Python, no backends, judges, training or SDKs.
"""

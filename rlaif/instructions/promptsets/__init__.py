"""Builders of the prompt sets shipped in `prompts/` (written for this project).

`python -m rlaif.instructions.promptsets` rewrites `prompts/ifeval_id.jsonl`, `prompts/ifeval_ood.jsonl` and
`prompts/assistant.jsonl` from the topic lists and templates in this package. The output is
deterministic (a fixed seed and Python's `random.Random`), and a test checks that the committed
files equal a fresh build.
"""

"""Policy evaluation: eval suites, win rates, constraint compliance, diversity (statistics in `rlaif.stats`).

- `suite`      the eval-suite schema, `load_suite`, `parse_policy`
- `runner`     `run_eval` (`rlaif eval SUITE`): per split, generate, judge, score; eval.json/.md/.html
- `winrate`    `rlaif winrate`: from labels or by judging responses; winrate.json/.md/.html
- `compliance` `constraint_compliance`: rule-checked, no judge
- `diversity`  `rlaif diversity`: distinct-n, EAD, self-BLEU, embedding diversity; diversity.json/.md
- `embed`      the offline MiniLM embedder and the tokenizers of the n-gram metrics

Nothing is imported here, so `import rlaif.eval.suite` stays light (torch loads only when used).
"""

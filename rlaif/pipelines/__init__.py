"""The multi-step commands: `rlaif demo` and `rlaif train online-dpo`, each a recipe read top to bottom."""

"""rlaif: RL from AI feedback, and the evaluation around it."""

__version__ = "0.1.0"

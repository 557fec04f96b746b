"""Pure numpy/scipy statistics (no torch, no model SDKs): agreement, bias, ranking, win rate, diversity."""

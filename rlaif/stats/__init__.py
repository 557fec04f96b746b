"""Pure numpy/scipy statistics (no torch, no model SDKs): agreement, bias, ranking, win rate, diversity, and the
human-labeler audit (annotations, crowd_agreement, labelers, drift, coverage, groups, confidence, consensus)."""

"""Closed-form intervals for a proportion."""
from __future__ import annotations

import math

from scipy.stats import norm


def wilson_interval(p: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion p observed on n trials (two-sided, at `confidence`).

    n may be an effective count (e.g. prompts, when p pools several outcomes per prompt); n > 0."""
    z = norm.ppf(1 - (1 - confidence) / 2)
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, float(center - half)), min(1.0, float(center + half))

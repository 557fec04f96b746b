"""The audit of human labelers: labels in, statistics, findings, report and consensus out."""

"""Statistics and diagnostics over finished runs: seed statistics, significance tests, what limits a verdict.
No training and no tracking store here."""

"""Plain data every layer reads: errors named by what they do to a study, seed derivation, each task kind's
metrics and their direction, the architecture list, trial records and run statuses. Imports nothing of
rnncompare."""

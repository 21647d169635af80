"""This process's settings: the Keras backend, XLA's flags and compile cache, quiet libraries, the garbage
collector's pace, the cores a process runs on. Imports nothing of rnncompare; no private API of a library (those
are `rnncompare.compat`'s)."""

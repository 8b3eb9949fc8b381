"""One module per fuzz target; each runs as ``python -m fuzz.targets.<name> [libFuzzer flags]``."""

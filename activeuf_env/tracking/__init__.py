"""Weights & Biases: the recorder wrapper, JSON serialisation of settings, and the reader of offline runs."""

"""Fuzzing the label readers: crafted hostile cases, a bounded runner, a corpus."""

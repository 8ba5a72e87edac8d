"""Benchmarks: medians over repeated runs, each beside a floor measured in the same run."""

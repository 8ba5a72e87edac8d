"""Caxton's test suite; run it with `python3 dev.py test`."""

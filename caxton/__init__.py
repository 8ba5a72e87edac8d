"""Caxton: an event-sourced runtime for multi-agent systems."""

__version__ = "0.1.0"

"""Observability: metrics, health, logs, live figures and the live span exporter."""

"""Tests: wasm."""

"""Peer systems measured against netready on the same data and windows (see BENCHMARKS.md)."""

"""Benchmark harness for netready: kernel peers and end-to-end ingest. Run `bench/run` (see BENCHMARKS.md)."""

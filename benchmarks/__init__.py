"""Benchmark harness for reka_async: ``python -m benchmarks.run`` (see benchmarks/README.md)."""

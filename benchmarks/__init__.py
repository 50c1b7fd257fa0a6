"""Benchmarks of the audit pipeline on synthetic reports made from the real ones (see README.md)."""

"""Benchmarks of the Confirma provider (run with ``make bench``)."""

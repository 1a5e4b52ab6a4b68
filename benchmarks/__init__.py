"""Benchmarks of regflow against its anchors, run by ``make bench`` (``python -m benchmarks``).

Each comparison measures regflow and the library underneath it in the same run, taking turns,
so the ratios hold on a noisy machine. See docs/benchmarks.md for the numbers and what bounds
them.
"""

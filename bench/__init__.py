"""stave's benchmarks: ``make bench`` (``python -m bench``). Figures, not assertions."""

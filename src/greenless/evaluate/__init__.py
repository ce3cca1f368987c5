"""Quality metrics, the reference model wrapper used for side-by-side comparisons, and benchmarks."""

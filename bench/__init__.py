"""obview benchmarks: `python -m bench [--quick]` prints figures and rewrites bench/RESULTS.md."""

"""Real-process stress harnesses shared by the CI tests (tests/terminal) and the benchmarks."""

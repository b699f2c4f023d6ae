"""The benchmark harness of `make bench` (not a test, not part of the wheel)."""

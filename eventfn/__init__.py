"""The runtime of the function."""

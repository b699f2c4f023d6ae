"""Runnable examples: every code example of the manual (docs/) is a file here, included into its
page with a snippet, and run by `make test` (pytest collects `examples/`)."""

"""The Knative func entry point: func's Python scaffolding does `from function import new`."""

from function.func import Function, new

__all__ = ["Function", "new"]

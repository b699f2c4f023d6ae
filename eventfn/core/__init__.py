"""The runtime's foundation: settings, the exception tree and ASGI plumbing.

Imports nothing else of the runtime; everything else may import it.
"""

"""In-process tests: the runtime's parts and the app through an in-process client; no process,
socket or Redis of their own.
"""

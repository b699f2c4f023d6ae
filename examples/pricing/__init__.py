"""A function with settings, a lifespan and outgoing calls of its own (docs/guide/handlers.md)."""

"""The manual's progress-capable handler: an async generator that reports stages, then replies."""

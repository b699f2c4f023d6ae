"""The stores: dedupe, outbox and dead letters, each in memory or SQLite and in Redis."""

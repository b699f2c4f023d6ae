"""Delivery to K_SINK: one retry policy, the publisher and the outbox redeliverer."""

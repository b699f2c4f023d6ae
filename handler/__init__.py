"""The function's business logic: its handlers (`handler/functions.py`) and their registry."""

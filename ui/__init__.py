"""The Streamlit console of the function (`make ui`): a thin client of its API and WebSocket."""

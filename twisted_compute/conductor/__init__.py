"""The conductor role: orchestrates builds; the agents' DB proxy."""

"""The compute role: the API layer (api.py) and the agent (manager.py)."""

"""The scheduler role (the control-plane issue)."""

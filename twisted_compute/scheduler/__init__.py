"""The scheduler role: picks hosts for new servers (filters, then
weighers)."""

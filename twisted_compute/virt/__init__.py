"""Virt drivers (the control-plane and libvirt issues)."""

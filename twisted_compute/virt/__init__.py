"""Virt drivers: the interface (driver.py), the fake driver, libvirt."""

"""The libvirt virt driver (``compute_driver = libvirt``): see
:mod:`twisted_compute.virt.libvirt.driver`."""

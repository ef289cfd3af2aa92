"""Tests of the message bus (twisted_compute.rpc)."""

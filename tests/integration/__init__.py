"""Integration tests: real ``twistd`` processes talked to over sockets.

The helpers are in :mod:`tests.integration.harness`.
"""

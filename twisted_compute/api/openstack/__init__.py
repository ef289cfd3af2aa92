"""The OpenStack Compute API v2.1: microversions, router, controllers."""

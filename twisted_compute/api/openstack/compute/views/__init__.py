"""View functions: build API bodies from records, per microversion."""

"""Obligation checks, one module per kind; `registry.checks()` finds them."""

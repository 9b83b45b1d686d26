"""Compliance: every proposed contact is checked against a jurisdiction pack before it may happen."""

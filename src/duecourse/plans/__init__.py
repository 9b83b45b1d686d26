"""Repayment plans: affordability, the options a policy allows, and who may agree them (pure, no I/O)."""

"""The demo: a realistic synthetic book whose behaviour follows roll rates estimated from real data."""

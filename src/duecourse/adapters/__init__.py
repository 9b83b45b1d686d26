"""Adapters: the imperative shell's implementations of the ports the services define (database, channels, clock)."""

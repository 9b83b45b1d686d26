"""The append-only, hash-chained audit log: every decision, contact, data access and change."""

"""Persistence: the archive database (tables, ledger, bulk loading) and object stores."""

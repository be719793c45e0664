"""Pure domain models: no I/O beyond parsing bytes already read."""

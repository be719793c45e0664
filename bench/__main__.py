"""Entry point of `make bench` (python -m bench)."""

from bench.time_to_data import main

raise SystemExit(main())

"""Arrival sources: they notice a complete delivery and announce it.

A source (the local inbox watcher, the S3 inbox, the reconciler) finds a
delivery whose ``manifest.json`` has landed, makes it available as a local
folder, and emits one ``Arrival`` to an ``ArrivalSink``. The sink in
production emits the Prefect event that starts the release flow; tests use
a list. Sources decide nothing about exactly-once: duplicates are expected,
the ledger settles them.
"""

"""The arrival sources a machine runs, started and stopped together.

The inbox watcher always; the S3 inbox poller when ``FIRSTLIGHT_S3_BUCKET``
is set. Both announce to the same sink (the Prefect server's event API).
"""

from __future__ import annotations

import threading

from firstlight.config import Settings
from firstlight.events.arrival import ArrivalSink
from firstlight.events.local_inbox import InboxWatcher


class Watchers:
    def __init__(self, settings: Settings, sink: ArrivalSink) -> None:
        self._settings = settings
        self._sink = sink
        self._inbox: InboxWatcher | None = None
        self._stop = threading.Event()
        self._s3: threading.Thread | None = None

    def start(self) -> None:
        self.start_inbox()
        if self._settings.s3_bucket and self._s3 is None:
            from firstlight.events.s3_inbox import S3Inbox

            poller = S3Inbox.from_settings(self._settings, self._sink)
            self._s3 = threading.Thread(
                target=poller.run,
                args=(self._stop, self._settings.watch_poll_seconds),
                name="s3-inbox",
                daemon=True,
            )
            self._s3.start()

    def start_inbox(self) -> None:
        if self._inbox is None:
            self._inbox = InboxWatcher(
                self._settings.inbox_dir,
                self._sink,
                settle_seconds=self._settings.inbox_settle_seconds,
                poll_seconds=self._settings.watch_poll_seconds,
            )
            self._inbox.start()

    def stop_inbox(self) -> None:
        """Stop watching the inbox folder (reconcile-inbox still finds what lands)."""
        if self._inbox is not None:
            self._inbox.stop()
            self._inbox = None

    def stop(self) -> None:
        self.stop_inbox()
        self._stop.set()
        if self._s3 is not None:
            self._s3.join(timeout=10)
            self._s3 = None

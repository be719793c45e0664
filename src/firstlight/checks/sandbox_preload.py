"""What the validation forkserver imports once, before any child is forked from it.

Every child (one per check of a delivered file, see ``checks.isolation``)
then starts with the checks and their heavy libraries already loaded:
Great Expectations takes 2 to 3 s to import, paid once per forkserver (once
per worker process) instead of once per file. The forkserver itself never
touches a delivered file, so what children inherit from it is clean.
"""

from __future__ import annotations

# The per-file checks and the per-delivery one.
from firstlight.checks.expectations import import_great_expectations

import_great_expectations()

"""The errors firstlight raises on purpose, sorted by what the caller can do.

Every exception class of the project derives from ``FirstlightError`` through
one kind:

- ``InvalidInputError`` (a ``ValueError``): what someone gave us is wrong (a
  manifest, a rule or suite file, a parameter, an ADQL query); fix the input.
- ``NotFoundError`` (a ``LookupError``): no such mission, release, delivery or
  model version.
- ``ConflictError`` (a ``RuntimeError``): the thing exists but its state
  forbids the operation (a promoted release, an object already stored with
  other bytes, a UWS job's phase).
- ``ExternalError`` (a ``RuntimeError``): a system we depend on failed (a
  store's bytes are not what was written, a copy is not byte-identical, the
  database cancelled a query); retry once it is fixed.

``DeliveryRejected`` (domain.findings) is a verdict rather than a failure: it
derives from ``FirstlightError`` directly. The kinds keep the built-in base
each class had before, so ``except ValueError`` and the like catch what they
always caught. The CLI maps kinds to messages and exit codes in one place
(``cli_errors``); the query service keeps its own DALI error documents.
"""

from __future__ import annotations


class FirstlightError(Exception):
    """Base of every error firstlight raises on purpose; the message says what and where."""


class InvalidInputError(FirstlightError, ValueError):
    """The input is wrong: fixing it (not retrying) is what helps."""


class NotFoundError(FirstlightError, LookupError):
    """No such mission, release, table, delivery or version; the message says which."""


class ConflictError(FirstlightError, RuntimeError):
    """The state of what is named forbids the operation."""


class ExternalError(FirstlightError, RuntimeError):
    """A system firstlight depends on failed (store, disk, database): retry when fixed."""

"""ADQL 2.1, parsed with sqlglot and re-rendered for the archive's database.

``translate_adql`` is the one translator (``render``); ``AdqlError`` says
where a query is wrong. Never is a user's text pasted into SQL.
"""

from firstlight.query.adql.errors import AdqlError
from firstlight.query.adql.render import Translation, translate_adql

__all__ = ["AdqlError", "Translation", "translate_adql"]

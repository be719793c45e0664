"""firstlight: a mission's data delivery becomes a public, queryable archive release.

The library is usable without Prefect: ``domain`` (pure models), ``formats``
(readers), ``checks`` (verification and validation), ``storage`` (archive
database, object stores), ``services`` (the steps of a release) and ``query``
(what scientists ask). Prefect lives at the edge, in the top-level ``flows``
and ``tasks`` packages.
"""

__version__ = "0.1.0"

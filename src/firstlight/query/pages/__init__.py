"""What people look at: the read models and drawings behind the service's pages.

``catalog`` (missions, releases and what is in them, as a scientist may see
them now), ``operations`` (time-to-data, forecasts, quarantine, held
releases, for operators) and ``drawing`` (the sky map and the time-to-data
plot, PNG, cached by what they show). No HTTP here: the routes and templates
are in ``query.service.pages``. Every read is bounded (a LIMIT, or a filter
on one release or mission) and decides what is public through
``storage.visibility.PublicAt``.
"""

"""The store's internals, one module per concern. Private to :mod:`leadtui.store`.

Nothing outside ``leadtui/store.py`` (and this package) imports this package, Peewee or
psycopg: every other layer talks to the database through :class:`leadtui.store.Store` and
the records it re-exports.

Where to look:

- ``records.py``   the plain records every layer sees (Lead, Reply, Health, …) and constants
- ``models.py``    the Peewee models, bound per database
- ``backends.py``  every SQLite/PostgreSQL difference, in one object chosen at open
- ``database.py``  one open database: SQL helpers, write retries, the change counter
- ``schema.py``    schema version, migrations, the schema lock
- ``search.py``    search words → FTS5 / tsquery; the text a lead is found by
- ``raw.py``       raw items: the original bytes of every email and request
- ``apply.py``     the capture write path and its dedupe rules
- ``leads.py``     reading leads; ``triage.py`` the triage actions and their audit trail
- ``feed.py``      the change feed; ``waiters.py`` waiting for another connection's commit
- ``lease.py``     the capture lease; ``health.py`` source health and sync state
- ``stats.py``     counts and stats
"""

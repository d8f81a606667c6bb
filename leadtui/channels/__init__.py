"""Lead channels beyond the mailbox and IndiaMART's CRM pull, one module each.

Each module here is a capture source in the shape :mod:`leadtui.capture` defines (a factory
that makes a :class:`~leadtui.capture.Source` from the store, the pipeline and a health
callback) plus the checks ``leadtui doctor`` prints for it; :mod:`leadtui.sources` lists each
in its one registry. A channel's HTTP handlers live under :mod:`leadtui.ingest` and its
payload mapping under :mod:`leadtui.formats`, so a vendor's change is one edit in one place.
"""

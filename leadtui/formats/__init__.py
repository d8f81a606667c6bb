"""The parser's format families and the normalisation rules they share.

``leadtui.parser`` is the public entry point; this package holds the pieces it is built
from, one module per concern:

- ``text``: FORMATS 2.1-2.5 (control characters, whitespace, names, phones, emails, times)
- ``places``: FORMATS 2.6 and the appendix tables (states, countries, location lines)
- ``requirement``: FORMATS 2.7 and 7 (requirement rows, ``QUERY_MESSAGE``, one-line specs)
- ``results``: the output contract (key order, builders for each result kind)
- ``mime`` and ``html``: RFC 822 bytes to headers and rendered text lines
- ``indiamart_mail``, ``tradeindia_mail``, ``indiamart_api``, ``generic``: the families
- ``website_form`` and ``whatsapp``: what the HTTP ingest receives (form aliases, the lead
  contract check, Twilio and Meta messages) as generic leads
"""

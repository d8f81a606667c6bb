"""Search: the words a user types → an FTS5 query (SQLite) or a tsquery (PostgreSQL), and the
text a lead is found by.

SQLite keeps that text in an FTS5 table the store writes row by row (:func:`search_body`);
PostgreSQL computes the same in a generated column (:data:`PG_SEARCH`). The two must agree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from leadtui._store.records import MESSAGES_TEXT_LIMIT, SEARCH_FIELDS


def search_words(text: str) -> list[list[str]]:
    """The words of a search, each with the other forms it may match.

    Phone numbers are indexed forwards and reversed ("r" + the national number backwards),
    so the last digits of a number, which is how people often remember it, match too. A
    number written with its trunk or international prefix (``07079117117``,
    ``00917079117117``) also matches without the leading zeros.
    """
    found = []
    for word in re.findall(r"\w+", text, flags=re.UNICODE)[:12]:
        forms = [word]
        if word.isdigit() and len(word) >= 3:
            if len(bare := word.lstrip("0")) >= 3 and bare != word:
                forms.append(bare)
            forms.append("r" + word[::-1])
        found.append(forms)
    return found


def fts_query(text: str) -> str:
    """User text to an FTS5 query: every word must match as a prefix, in any field."""
    return " AND ".join(
        "(" + " OR ".join(f'"{f}"*' for f in forms) + ")" for forms in search_words(text)
    )


# SQLite: a search's matches newest first (see backends.SqliteBackend.first_page). FTS5 walks its index
# by rowid in either direction, so this reads only as many matches as are fetched (after
# merging the word lists of a prefix).
FTS_NEWEST = "SELECT rowid FROM lead_fts WHERE lead_fts MATCH ? AND rowid < ? ORDER BY rowid DESC"
# Some of those matches, as a set of ids (a JSON array: one parameter however many).
FTS_SOME = "(SELECT value FROM json_each(?))"


def pg_tsquery(text: str) -> str:
    return " & ".join(
        "(" + " | ".join(f"{f}:*" for f in forms) + ")" for forms in search_words(text)
    )


def search_body(values: dict[str, Any]) -> str:
    """The text a lead is found by (SQLite; PostgreSQL computes the same in PG_SEARCH)."""
    parts = [str(values.get(f) or "") for f in SEARCH_FIELDS]
    phone = str(values.get("phone") or "")
    if phone:
        national = phone[-10:]
        parts += [national, "r" + national[::-1]]  # as people type it, and backwards
    return " ".join(p for p in parts if p)


PG_SEARCH = (
    "to_tsvector('simple', regexp_replace("
    "coalesce(name,'') || ' ' || coalesce(company,'') || ' ' "
    "|| coalesce(phone,'') || ' ' || coalesce(right(phone, 10),'') || ' ' "
    "|| coalesce('r' || reverse(right(phone, 10)),'') || ' ' "
    "|| coalesce(email,'') || ' ' || coalesce(product,'') || ' ' "
    "|| coalesce(city,'') || ' ' || coalesce(message,'') || ' ' "
    "|| coalesce(messages_text,''), "
    "'[^[:alnum:]]+', ' ', 'g'))"
)


def messages_text(current: str | None, texts: Sequence[str]) -> str:
    """A lead's searchable message text with ``texts`` added, the newest kept within the limit
    (from a word's start, so a cut word cannot match as a prefix of something else)."""
    joined = "\n".join([*([current] if current else []), *texts])
    if len(joined) <= MESSAGES_TEXT_LIMIT:
        return joined
    kept = joined[-MESSAGES_TEXT_LIMIT:]
    return re.split(r"\s+", kept, maxsplit=1)[-1] or kept

"""Searching the recommendations' texts the same way on SQLite and PostgreSQL.

Neither database can fold Cyrillic the way the office reads it: SQLite's lower() changes ASCII
only, and PostgreSQL has no Kazakh stemmer. So the folding happens here, in Python, once per
write: every recommendation keeps `search_text = fold(text)` beside its text, and each database
indexes that folded copy with its own full-text index (SQLite: the FTS5 table
`recommendation_fts` kept in step by triggers; PostgreSQL: a GIN index on
`to_tsvector('simple', search_text)`). A query is folded the same way and split into words;
an item matches when every word begins one of its words (word-prefix AND), which both
databases answer from their index (`Backend.text_search`). Same folding, same words, same
rule: the same items on both.
"""

from __future__ import annotations

import re
import unicodedata

#: ё and the Kazakh letters that Russian lacks, folded to the Russian letter a reader (and a
#: ministry typing on a Russian keyboard) puts in their place
_LETTERS = (
    ("ё", "е"), ("ә", "а"), ("ғ", "г"), ("қ", "к"), ("ң", "н"), ("ө", "о"), ("ұ", "у"), ("ү", "у"), ("һ", "х"), ("і", "и"),
)
#: anything but letters and digits separates words (underscore too: it is punctuation to a reader)
_SEPARATORS = re.compile(r"[\W_]+")

#: the objects of the search that live beside the models but are not models: the FTS5 table
#: with its shadow tables (SQLite) and the expression index (PostgreSQL). The migration makes
#: them; comparing the models with the database leaves them out, by these names only.
FTS_TABLE = "recommendation_fts"
SEARCH_INDEX = "ix_recommendation_search"


def fold(text: str | None) -> str:
    """The text as the search compares it: composed (NFC), case-folded, ё→е and the Kazakh letters
    to their Russian neighbours (ә→а, ғ→г, қ→к, ң→н, ө→о, ұ→у, ү→у, һ→х, і→и), punctuation to
    spaces, runs of whitespace to one space, no space at either end."""
    if not text:
        return ""
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())
    # letter by letter with `replace`, not one `translate` with a table: translate looks every
    # character of a Cyrillic text up in the table, 3x slower (an import folds every text); no
    # letter is replaced by one that is replaced in its turn, so the order does not matter
    for letter, russian in _LETTERS:
        if letter in folded:
            folded = folded.replace(letter, russian)
    return _SEPARATORS.sub(" ", folded).strip()


def query_words(query: str | None) -> list[str]:
    """The words of a search as the index holds them (folded), each once, in the order typed;
    empty when the query has no letter or digit (then nothing is filtered)."""
    return list(dict.fromkeys(fold(query).split()))


def is_search_object(name: str | None, type_: str) -> bool:
    """Whether a database object belongs to the search machinery rather than to the models (for
    Alembic's `include_object`: the FTS5 table and its shadow tables, the expression index)."""
    if name is None:
        return False
    if type_ == "table":
        return name == FTS_TABLE or name.startswith(f"{FTS_TABLE}_")
    if type_ == "index":
        return name == SEARCH_INDEX
    return False


def include_object(_object: object, name: str | None, type_: str, _reflected: bool, _compare_to: object) -> bool:
    """Alembic's `include_object` for comparing the models with a database: everything but the
    search machinery (`is_search_object`)."""
    return not is_search_object(name, type_)

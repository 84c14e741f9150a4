"""Spreadsheets meant for a person to open: every text stays text.

Excel, LibreOffice and Google Sheets run a CSV cell that starts with `=`, `+`, `-` or `@` as a
formula (`=HYPERLINK(…)` to a phishing page, a DDE `=cmd|'/C calc'!A0`), and a tab or a carriage
return in front hides one. The registry holds what ministries, the NPM and UN documents typed,
so every CSV written for reading (the annual report's tables, a reminder's complete item list)
is written by `readable_csv`, which follows OWASP's CSV-injection guidance: such a text gets a
single quote in front, which the spreadsheet shows as the text itself, and every cell that
holds the separator or a quote is quoted.

The registry's own export (`followup export recommendations`, spreadsheets/export.py) is data
that imports back byte for byte and does not come through here; its XLSX, like every XLSX the
project writes, types each text cell as text (spreadsheets/tabular.py).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

import pandas as pd

__all__ = ["FORMULA_STARTS", "inert_text", "readable_csv", "readable_csv_rows"]

#: what a spreadsheet program reads as the start of a formula (OWASP, "CSV Injection")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert_text(value: object) -> object:
    """A text that would start a formula, with a single quote in front; anything else as it is
    (numbers stay numbers: a count of -1 is a number, not a formula)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def readable_csv(frame: pd.DataFrame, *, sep: str = ",", decimal: str = ".") -> str:
    """The frame as CSV text for Excel: a byte-order mark (so that Excel reads UTF-8 Cyrillic),
    CRLF line ends, every text cell and header inert."""
    shown = frame.copy()
    shown.columns = [inert_text(str(c)) for c in frame.columns]
    for i, kind in enumerate(shown.dtypes):
        if not pd.api.types.is_numeric_dtype(kind):
            shown.isetitem(i, shown.iloc[:, i].map(inert_text))
    body = shown.to_csv(index=False, sep=sep, decimal=decimal, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    return "\ufeff" + str(body)


def readable_csv_rows(headers: Sequence[str], rows: Iterable[Sequence[object]], *, sep: str = ",") -> str:
    """`readable_csv` of rows as they come, without a frame: the same text (byte-order mark, CRLF,
    minimal quoting, every text cell and header inert), written by the csv module row by row. For
    long lists (a reminder's complete list of a backlog: hundreds of thousands of rows, where
    building and mapping a frame cost more than writing)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, delimiter=sep, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([inert_text(str(h)) for h in headers])
    writer.writerows([inert_text(v) for v in row] for row in rows)
    return out.getvalue()

"""Reading and writing the office's spreadsheets (CSV and XLSX) without losing a byte.

Every cell is read as text; nothing is guessed (no numbers, no NaN for "NA", no month-first
dates). Rows are numbered as a spreadsheet numbers them (header = row 1), so an error can
point the clerk at the exact row.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from followup.config.settings import get_settings
from followup.models.dates import parse_date


class ImportFileError(ValueError):
    """The file as a whole cannot be used (not a table, unknown columns...); one clear sentence."""


@dataclass(frozen=True, slots=True)
class RowError:
    row: int  # spreadsheet row number, header = 1
    field: str
    problem: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.field}: {self.problem}"


class ImportRejected(ValueError):
    """Some rows are bad: nothing was written. Carries every bad row."""

    def __init__(self, path: Path, errors: Sequence[RowError]):
        self.path = path
        self.errors = list(errors)
        rows = len({e.row for e in self.errors})
        super().__init__(
            f"{path.name}: {rows} bad row{'s' if rows != 1 else ''}, nothing was written:\n"
            + "\n".join(str(e) for e in self.errors)
        )

    @property
    def rejected_rows(self) -> int:
        return len({e.row for e in self.errors})


SUPPORTED = (".csv", ".xlsx")
CSV_SLICE = 50_000  # rows parsed at a time


def read_table(path: Path) -> pd.DataFrame:
    """The file's first table as text cells; index = spreadsheet row number; blank rows dropped."""
    slices = list(read_slices(path))
    return slices[0] if len(slices) == 1 else pd.concat(slices)


def read_slices(path: Path, rows: int | None = None) -> Iterator[pd.DataFrame]:
    """`read_table`'s table a slice of about `rows` (`CSV_SLICE`) rows at a time, each as `read_table` returns
    the whole (index = spreadsheet row number, blank rows dropped); at least one, empty for a
    table with a header and no rows. Every error about the file as a whole is raised by the
    first slice, except a CSV that stops being a well-formed table further down.

    A CSV is parsed slice by slice, so that a caller that lets go of each slice never holds every
    text of a 1,000,000-row file at once. An XLSX comes whole, in one slice: openpyxl's streaming
    reader could go row by row, but a workbook is already bounded by `FOLLOWUP_XLSX_MAX_MB`.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise ImportFileError(f"{path.name}: unsupported file type {suffix or '(none)'!r}; use .csv or .xlsx")
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file")
    columns: list[str] | None = None
    for frame in _read_csv(path, rows or CSV_SLICE) if suffix == ".csv" else iter([_read_xlsx(path)]):
        if columns is None:
            columns = _columns(path, frame)
        frame.columns = columns
        # column by column in numpy: pandas' frame-wide `==` costs a millisecond a column
        blank = np.ones(len(frame), dtype=bool)
        for i in range(len(frame.columns)):
            blank &= frame.iloc[:, i].to_numpy() == ""
        yield frame.loc[~blank]


def _columns(path: Path, frame: pd.DataFrame) -> list[str]:
    """The header as the import names columns (lower case, no BOM), refused when it repeats one."""
    columns = [_header(c) for c in frame.columns]
    # counted in one pass: a header of 20,000 columns is checked in milliseconds, not minutes
    dupes = [c for c, n in Counter(columns).items() if n > 1]
    if dupes:
        raise ImportFileError(
            f"{path.name}: {'column' if len(dupes) == 1 else 'columns'} {some_of(dupes)} "
            f"{'appears' if len(dupes) == 1 else 'appear'} more than once in the header"
        )
    if len(columns) == 0:
        raise ImportFileError(f"{path.name}: the file has no header row")
    return columns


#: how many names an error about columns lists before it says how many more there are
NAMED = 5


def some_of(names: Sequence[str]) -> str:
    """The first few names, quoted, and how many more: an error about a header of 20,000 columns
    fits on a line (`'a', 'b', 'c', 'd', 'e' and 19,995 more`)."""
    shown = ", ".join(map(repr, names[:NAMED]))
    return shown + (f" and {len(names) - NAMED:,} more" if len(names) > NAMED else "")


def _header(value: object) -> str:
    return str(value).replace("\ufeff", "").strip().lower()


def _check_utf8(path: Path) -> None:
    """The whole file must be UTF-8; checked in 1 MB steps, so a 300 MB file is never held twice."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(1 << 20)
            pending = decoder.getstate()[0]
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                data = pending + chunk
                raise ImportFileError(
                    f"{path.name}: not UTF-8 text (byte 0x{data[exc.start]:02x} at position {offset - len(pending) + exc.start}); "
                    "save it as 'CSV UTF-8' or .xlsx"
                ) from None
            if not chunk:
                return
            offset += len(chunk)


def _read_csv(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    """The table in slices of `rows` rows (index = spreadsheet row number: header = 1)."""
    with path.open("rb") as fh:
        head = fh.read(65536)
        whole = not fh.read(1)
    if not head.strip() and whole:
        raise ImportFileError(f"{path.name}: the file is empty")
    if b"\x00" in head:
        raise ImportFileError(f"{path.name}: this is not a CSV table (binary data); save the sheet as CSV UTF-8 or .xlsx")
    _check_utf8(path)
    first_line = head.decode("utf-8-sig", errors="ignore").split("\n", 1)[0]
    delimiter = max((";", ",", "\t"), key=first_line.count)
    if first_line.count(delimiter) == 0:
        delimiter = ","
    try:
        reader = pd.read_csv(
            # the file itself, decoded by the C parser: 3x faster than feeding it decoded text,
            # and the file is never in memory whole (already checked to be UTF-8)
            path,
            encoding="utf-8-sig",
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            quoting=csv.QUOTE_MINIMAL,
            engine="c",
            # in slices: the parser's working memory is bounded by a slice, not by the file
            chunksize=rows,
        )
        with reader:
            for frame in reader:
                # the parser numbers rows on from slice to slice (blank lines included)
                frame.index = pd.RangeIndex(frame.index.start + 2, frame.index.stop + 2)
                yield frame
    except pd.errors.EmptyDataError:
        raise ImportFileError(f"{path.name}: the file is empty") from None
    except pd.errors.ParserError as exc:
        message = str(exc).replace("Error tokenizing data. C error: ", "")
        found = re.search(r"line (\d+), saw (\d+)", message)
        if found:
            message = f"line {found.group(1)} has {found.group(2)} cells, more than the header's"
        raise ImportFileError(f"{path.name}: not a well-formed CSV table: {message}") from None


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return ooxml_unescape(value)
    return str(value)


def _read_xlsx(path: Path) -> pd.DataFrame:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    _check_unpacked_size(path)
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError):
        raise ImportFileError(f"{path.name}: not an Excel .xlsx workbook (is it another format renamed?)") from None
    try:
        sheet = workbook.worksheets[0]
        # the sheet's <dimension> is a claim another program wrote: read the rows that are there
        # (a sheet claiming A1:C2 over five rows would otherwise lose three, silently)
        if hasattr(sheet, "reset_dimensions"):
            sheet.reset_dimensions()
        rows = sheet.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None or all(v is None for v in header):
            raise ImportFileError(f"{path.name}: the first sheet is empty")
        width = max(i + 1 for i, v in enumerate(header) if v is not None)
        body = [[_cell_text(v) for v in (row + (None,) * width)[:width]] for row in rows]
    except (zipfile.BadZipFile, EOFError, KeyError, ValueError, SyntaxError) as exc:
        if isinstance(exc, ImportFileError):
            raise
        raise ImportFileError(f"{path.name}: a damaged .xlsx workbook (its first sheet cannot be read); save it again from Excel") from None
    finally:
        workbook.close()
    frame = pd.DataFrame(body, columns=[_cell_text(h) for h in header[:width]], dtype=object)
    frame.index = pd.RangeIndex(2, len(frame) + 2)
    return frame.astype(str) if len(frame) else frame


_MB = 1024 * 1024


def _check_unpacked_size(path: Path) -> None:
    """Refuse a workbook that unpacks to more than `FOLLOWUP_XLSX_MAX_MB`, before any XML is parsed.

    An .xlsx is a zip archive: 4 MB of deflated zeros unpack to 1 GB, which openpyxl would parse
    until the machine gives out. The sizes the archive's directory declares are checked first
    (they cost nothing), then every part is unpacked as a stream and counted, so a directory that
    understates a part is caught too (zipfile stops at the declared size and the part's checksum
    then fails: a damaged workbook).
    """
    limit_mb = get_settings().xlsx_max_mb
    limit = limit_mb * _MB

    def too_big(size: str) -> ImportFileError:
        return ImportFileError(
            f"{path.name}: unpacks to {size} the {limit_mb} MB an import reads "
            "(FOLLOWUP_XLSX_MAX_MB); split the sheet or save it as CSV UTF-8"
        )

    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise ImportFileError(f"{path.name}: not an Excel .xlsx workbook (is it another format renamed?)") from None
    with archive:
        members = archive.infolist()
        declared = sum(m.file_size for m in members)
        if declared > limit:
            raise too_big(f"{declared / _MB:,.0f} MB, more than")
        unpacked = 0
        try:
            for member in members:
                with archive.open(member) as part:
                    while chunk := part.read(_MB):
                        unpacked += len(chunk)
                        if unpacked > limit:
                            raise too_big("more than")
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError):
            raise ImportFileError(
                f"{path.name}: a damaged .xlsx workbook (a part does not unpack as the archive says); save it again from Excel"
            ) from None


# --- dates -----------------------------------------------------------------------------------


def parse_days(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse a column of date texts with `models.dates.parse_date` (day first or ISO, never
    month first); returns (dates or None, problem text or '') per row.

    Parses each distinct text once: a 500,000-row file has a few thousand distinct dates.
    """
    parsed: dict[str, date | None] = {}
    problems: dict[str, str] = {}
    for text in pd.unique(values):
        if text == "" or text is None:
            parsed[text] = None
            continue
        try:
            parsed[text] = parse_date(text)
        except ValueError as exc:
            parsed[text] = None
            problems[text] = str(exc)
    return values.map(parsed), (values.map(problems).fillna("") if problems else pd.Series("", index=values.index))


# --- writing ---------------------------------------------------------------------------------


def write_table(frame: pd.DataFrame, path: Path, *, date_columns: Sequence[str] = ()) -> None:
    """Write a frame as CSV (UTF-8 with BOM so that Excel shows Cyrillic, comma) or XLSX.

    The data the registry imports back (its export, a quarantine file, the portal's sheet):
    a CSV holds every text exactly as it is, so it is data to import, not a sheet to open with
    formulas (a sheet for reading is written by `models.cells.readable_csv`); an XLSX types every
    text as text (`write_workbook`)."""
    path = Path(path)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\r\n")
    elif suffix == ".xlsx":
        write_workbook(path, {"recommendations": frame}, date_columns=date_columns)
    else:
        raise ImportFileError(f"{path.name}: unsupported file type {suffix or '(none)'!r}; use .csv or .xlsx")


def xlsx_bytes(frame: pd.DataFrame, *, date_columns: Sequence[str] = ()) -> bytes:
    """The frame as an XLSX workbook in memory (a download), written as `write_table` writes a file."""
    buffer = io.BytesIO()
    write_workbook(buffer, {"recommendations": frame}, date_columns=date_columns)
    return buffer.getvalue()


def write_workbook(target: Path | io.BytesIO, sheets: Mapping[str, pd.DataFrame], *, date_columns: Sequence[str] = (),
                   fit_widths: bool = False) -> None:
    """Every XLSX the project writes, one sheet per frame: each text cell is typed as text, never
    run as a formula, and holds its text exactly.

    openpyxl makes a text starting with "=" a formula (`=HYPERLINK(…)` would run when the sheet
    is opened, and reads back empty) and "#N/A" an error cell: every cell a frame holds is a
    value, so those are typed back as text. A carriage return, which XML reads back as a line
    feed, and the control characters XML cannot hold are written as Excel writes them
    (`_x000D_`), and `read_table` reads them back (`ooxml_unescape`): a text with a Windows
    line break comes back from an export unchanged. `date_columns` are shown DD.MM.YYYY;
    `fit_widths` sizes each column to its longest cell (up to 60 characters), for sheets
    meant for reading.
    """
    from openpyxl.utils import get_column_letter

    with pd.ExcelWriter(target, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            cells = _escaped(frame)
            cells.to_excel(writer, index=False, sheet_name=name)
            sheet = writer.sheets[name]
            for row in sheet.iter_rows():
                for cell in row:
                    if cell.data_type in ("f", "e"):
                        cell.data_type = "s"
            for i, column in enumerate(frame.columns, start=1):
                if column in date_columns:
                    for (cell,) in sheet.iter_rows(min_row=2, min_col=i, max_col=i):
                        cell.number_format = "DD.MM.YYYY"
            if fit_widths:
                for i, header in enumerate(frame.columns):
                    width = max([len(str(header))] + [len(str(v)) for v in frame.iloc[:, i]])
                    sheet.column_dimensions[get_column_letter(i + 1)].width = min(max(10, width + 2), 60)


#: what an XML cell cannot hold as it is (carriage return, which XML turns into a line feed,
#: and the control characters XML 1.0 forbids), and an "_" that starts what would read as an
#: escape, so that a text that itself says "_x000D_" stays that text
_OOXML_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x0d\x0e-\x1f]|_(?=x[0-9A-Fa-f]{4}_)")
_OOXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def ooxml_escape(text: str) -> str:
    """A text as an XLSX cell holds it: `\\r` as `_x000D_`, `_x000D_` as `_x005F_x000D_` (Excel's own escape)."""
    return _OOXML_UNSAFE.sub(lambda m: f"_x{ord(m.group()):04X}_", text)


def ooxml_unescape(text: str) -> str:
    """The text an XLSX cell means: `_x000D_` is a carriage return, as Excel reads it."""
    return _OOXML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text) if "_x" in text else text


def _escaped(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text escaped for XLSX (only the few cells that need it are rewritten)."""
    out = frame.copy()
    out.columns = [ooxml_escape(c) if isinstance(c, str) else c for c in frame.columns]
    for i, kind in enumerate(out.dtypes):
        if pd.api.types.is_numeric_dtype(kind):
            continue
        column = out.iloc[:, i]
        unsafe = column.map(lambda v: isinstance(v, str) and _OOXML_UNSAFE.search(v) is not None).astype(bool)
        if unsafe.any():
            column = column.copy()
            column[unsafe] = column[unsafe].map(ooxml_escape)
            out.isetitem(i, column)
    return out

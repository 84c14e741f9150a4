"""Files that come with a reply: read from the request as it streams, typed by their content,
kept by their SHA-256 outside any web root.

A ministry's upload is hostile until proven otherwise: its name and declared type say nothing
(a "scan.pdf" may be an HTML page that would run in the office's browser), so the type is read
from the bytes; the name is kept for display only and never reaches the filesystem; a file over
the policy's size is cut off while it streams, never held whole in memory; Word and Excel files
are zip archives, checked from their directory without extracting anything.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import quote

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from followup.models.replies import EvidenceInput

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
GIF = "image/gif"
WEBP = "image/webp"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: what a reply may carry, with the extension a download is named with
ACCEPTED = {PDF: ".pdf", PNG: ".png", JPEG: ".jpg", GIF: ".gif", WEBP: ".webp", DOCX: ".docx", XLSX: ".xlsx"}
#: what the file picker offers (a hint only: the server reads the content)
ACCEPT_ATTRIBUTE = ".pdf,.png,.jpg,.jpeg,.gif,.webp,.docx,.xlsx"

#: a Word document or a workbook has tens to a few hundred parts; a zip bomb has many, or declares gigabytes
ZIP_MAX_MEMBERS = 5_000
ZIP_MAX_UNCOMPRESSED = 512 * 1024 * 1024
HEAD_BYTES = 64
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class FormTooLarge(Exception):
    """The request as a whole is beyond the limits (too many files or fields, too long): 413, nothing kept."""


class BadForm(Exception):
    """Not a multipart form this app sent (no boundary, broken framing): 400."""


@dataclass
class ReceivedFile:
    """One uploaded file as it arrived: in a temporary file of the store's incoming folder."""

    form_field: str
    filename: str  # as the browser sent it, cleaned for display (`display_name`)
    path: Path | None = None
    size: int = 0
    head: bytes = b""
    too_large: bool = False
    _hash: hashlib._Hash = field(default_factory=hashlib.sha256, repr=False)
    _handle: IO[bytes] | None = field(default=None, repr=False)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    @property
    def empty(self) -> bool:
        """A file input left empty: browsers still send a part with no name and no bytes."""
        return self.size == 0 and not self.too_large

    def discard(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None


@dataclass
class ReceivedForm:
    """The fields and files of one multipart request."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: list[ReceivedFile] = field(default_factory=list)

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[0] if values else default

    def getlist(self, name: str) -> list[str]:
        return list(self.fields.get(name, []))

    def files_of(self, name: str) -> list[ReceivedFile]:
        return [f for f in self.files if f.form_field == name and not f.empty]

    def discard(self) -> None:
        """Delete every temporary file (what was not kept)."""
        for received in self.files:
            received.discard()


def display_name(name: str) -> str:
    """The uploaded name as shown on pages: its last path part, without control or direction
    characters, at most 200 characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] not in ("C", "Z") or ch == " ")
    base = base.strip(" .")[:200]
    return base or "file"


class _Parser:
    """python-multipart's callbacks, writing file parts to temporary files as they arrive."""

    def __init__(self, incoming: Path, *, file_limit: int, max_files: int, max_fields: int, field_limit: int) -> None:
        self.incoming = incoming
        self.file_limit, self.max_files, self.max_fields, self.field_limit = file_limit, max_files, max_fields, field_limit
        self.form = ReceivedForm()
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._field: str | None = None
        self._data = bytearray()
        self._file: ReceivedFile | None = None
        self._fields = 0

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.on_part_begin, "on_part_data": self.on_part_data, "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field, "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end, "on_headers_finished": self.on_headers_finished,
        }

    def on_part_begin(self) -> None:
        self._disposition, self._field, self._file, self._data = b"", None, None, bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise BadForm("a form part without a name")
        name = options[b"name"].decode("utf-8", "replace")
        if b"filename" in options:
            if len(self.form.files) >= self.max_files:
                raise FormTooLarge("too many files")
            self._file = ReceivedFile(form_field=name, filename=display_name(options[b"filename"].decode("utf-8", "replace")))
            self.form.files.append(self._file)
        else:
            self._fields += 1
            if self._fields > self.max_fields:
                raise FormTooLarge("too many fields")
            self._field = name

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        received = self._file
        if received is None:
            if len(self._data) + len(chunk) > self.field_limit:
                raise FormTooLarge("a field is too long")
            self._data.extend(chunk)
            return
        if received.too_large or not chunk:
            return
        if received.size + len(chunk) > self.file_limit:
            # cut off: the rest of this file is read from the request and dropped
            received.too_large = True
            received.discard()
            return
        if received._handle is None:
            handle = tempfile.NamedTemporaryFile(dir=self.incoming, prefix="upload-", delete=False)  # noqa: SIM115 - closed in on_part_end or discard
            received._handle, received.path = handle, Path(handle.name)
        received._handle.write(chunk)
        received._hash.update(chunk)
        if len(received.head) < HEAD_BYTES:
            received.head = (received.head + chunk)[:HEAD_BYTES]
        received.size += len(chunk)

    def on_part_end(self) -> None:
        if self._file is not None:
            if self._file._handle is not None:
                self._file._handle.close()
                self._file._handle = None
        elif self._field is not None:
            self.form.fields.setdefault(self._field, []).append(self._data.decode("utf-8", "replace"))


async def read_multipart(request: Request, *, incoming: Path, file_limit: int, max_files: int = 20,
                         max_fields: int = 2_000, field_limit: int = 64 * 1024) -> ReceivedForm:
    """Read a multipart form as it streams: fields in memory (each at most `field_limit` bytes),
    files into temporary files under `incoming`, each cut off past `file_limit` bytes (marked
    `too_large`, its bytes dropped). A request longer than all of that allows is FormTooLarge.

    The caller keeps the files it wants (`EvidenceStore.keep`) and calls `discard()` for the rest.
    """
    content_type = request.headers.get("content-type", "")
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise BadForm("not a multipart form")
    total_limit = max_files * (file_limit + 64 * 1024) + max_fields * 1024 + 2 * 1024 * 1024
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > total_limit:
        raise FormTooLarge("the request is too long")
    incoming.mkdir(parents=True, exist_ok=True)
    handler = _Parser(incoming, file_limit=file_limit, max_files=max_files, max_fields=max_fields, field_limit=field_limit)
    parser = MultipartParser(params[b"boundary"], handler.callbacks())  # type: ignore[arg-type]
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > total_limit:
                raise FormTooLarge("the request is too long")
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        handler.form.discard()
        raise BadForm("broken multipart data") from exc
    except BaseException:
        handler.form.discard()
        raise
    return handler.form


# --- what a file is, from its bytes ------------------------------------------------------------


def _office_type(path: Path) -> str | None:
    """DOCX or XLSX when the file is a zip whose directory (read, never extracted) has
    [Content_Types].xml and the word/ or xl/ parts, within sane counts and declared sizes."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        return None
    if len(members) > ZIP_MAX_MEMBERS or sum(m.file_size for m in members) > ZIP_MAX_UNCOMPRESSED:
        return None
    names = {m.filename for m in members}
    if "[Content_Types].xml" not in names:
        return None
    word = "word/document.xml" in names
    workbook = "xl/workbook.xml" in names
    if word and not workbook:
        return DOCX
    if workbook and not word:
        return XLSX
    return None


def sniff(received: ReceivedFile) -> str | None:
    """The file's type from its content (one of ACCEPTED), or None: not a type a reply may carry."""
    head = received.head
    if received.path is None or received.too_large:
        return None
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head.startswith(b"PK\x03\x04"):
        return _office_type(received.path)
    return None


def sniff_table(received: ReceivedFile) -> str | None:
    """".xlsx" or ".csv" for a spreadsheet upload (the suffix `read_table` is given), from the content:
    an Excel workbook, or UTF-8 text without NUL bytes. None: neither."""
    if received.path is None or received.too_large:
        return None
    if received.head.startswith(b"PK\x03\x04"):
        return ".xlsx" if _office_type(received.path) == XLSX else None
    decoder = codecs.getincrementaldecoder("utf-8")()
    with received.path.open("rb") as fh:
        while chunk := fh.read(1 << 16):
            if b"\x00" in chunk:
                return None
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                return None
    return ".csv"


# --- the store ---------------------------------------------------------------------------------


class EvidenceStore:
    """Files by SHA-256 under `root/<first two hex digits>/<sha256>`: a file sent twice is kept once,
    and no name a ministry chose is ever a path."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def incoming(self) -> Path:
        """Where uploads stream to before they are typed and kept (same filesystem: kept by a rename)."""
        path = self.root / ".incoming"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def path_of(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError("not a SHA-256 digest")
        return self.root / sha256[:2] / sha256

    def keep(self, received: ReceivedFile, content_type: str) -> EvidenceInput:
        """Move a typed upload into the store (or drop it: the same content is there already)."""
        if received.path is None:
            raise ValueError("nothing was received")
        target = self.path_of(received.sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            received.path.unlink(missing_ok=True)
        else:
            os.chmod(received.path, 0o640)
            os.replace(received.path, target)
        received.path = None
        return EvidenceInput(sha256=received.sha256, filename=received.filename, content_type=content_type,
                             size=received.size)


def download_name(filename: str, content_type: str) -> str:
    """The name a download gets: the ministry's, ending in the extension of the type found."""
    extension = ACCEPTED.get(content_type, "")
    name = display_name(filename)
    if extension and not name.lower().endswith(extension) and not (extension == ".jpg" and name.lower().endswith(".jpeg")):
        name += extension
    return name


def content_disposition(filename: str, content_type: str) -> str:
    """`attachment` with an ASCII name for old clients and the UTF-8 one (RFC 6266)."""
    name = download_name(filename, content_type)
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", name) or "file"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"

"""Reading and writing tables as CSV (Python's csv module) and Excel workbooks (openpyxl),
safely: a cell a spreadsheet would evaluate is written as text, an uploaded file is checked
for its size, its type (by its bytes), its encoding and, for a workbook, the size it unpacks to
before it is opened (docs/design.md §11)."""

from __future__ import annotations

import csv
import io
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.http import FileResponse, StreamingHttpResponse

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
#: What a workbook may unpack to: a real 5 MB workbook of 20,000 rows unpacks to about 40 MB.
MAX_UNPACKED_BYTES = 60 * 1024 * 1024
MAX_COLUMNS = 50

CSV = "csv"
XLSX = "xlsx"
FORMATS = (CSV, XLSX)
CONTENT_TYPES = {
    CSV: "text/csv; charset=utf-8",
    XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

#: First characters that make a spreadsheet read a cell as a formula (or a DDE command).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NEUTRALISER = "'"


def neutralise(value):
    """A cell value as written: text that a spreadsheet would evaluate gets a leading ``'``
    (shown as text by every spreadsheet); numbers, even negative ones, stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return NEUTRALISER + value
    return value


def unneutralise(value: str) -> str:
    """The text a neutralised cell stood for (an export read back is what was exported)."""
    if value.startswith(NEUTRALISER) and value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value


# Writing ------------------------------------------------------------------------------------


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_cell(value) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    return "" if value is None else str(value)


def csv_response(header: list[str], rows: Iterable[list], *, file_name: str):
    """A CSV file streamed row by row (with a BOM, so that Excel reads it as UTF-8)."""
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield "\ufeff" + writer.writerow([neutralise(cell) for cell in header])
        for row in rows:
            yield writer.writerow([neutralise(_csv_cell(cell)) for cell in row])

    response = StreamingHttpResponse(lines(), content_type=CONTENT_TYPES[CSV])
    response["Content-Disposition"] = f'attachment; filename="{file_name}.csv"'
    return response


def xlsx_response(header: list[str], rows: Iterable[list], *, file_name: str, title: str):
    """A workbook written with openpyxl's write-only mode (rows go to a temporary file as
    they come, never all in memory), then streamed from that file."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    sheet.append(header)
    for row in rows:
        sheet.append([neutralise(cell) for cell in row])
    output = tempfile.TemporaryFile()  # noqa: SIM115 (FileResponse closes it)
    workbook.save(output)
    output.seek(0)
    return FileResponse(
        output,
        as_attachment=True,
        filename=f"{file_name}.xlsx",
        content_type=CONTENT_TYPES[XLSX],
    )


def response(fmt: str, header: list[str], rows: Iterable[list], *, file_name: str, title: str):
    if fmt == XLSX:
        return xlsx_response(header, rows, file_name=file_name, title=title)
    return csv_response(header, rows, file_name=file_name)


# Reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Formula:
    """A workbook cell holding a formula: refused, never evaluated nor stored."""

    text: str


@dataclass(frozen=True)
class Table:
    header: list[str]
    #: (line in the file, cells) for every row that is not empty
    rows: list[tuple[int, list]]


def detect_format(content: bytes, file_name: str) -> str:
    """The file's format, from its bytes (a workbook is a zip archive; CSV is text)."""
    if content.startswith(b"PK\x03\x04"):
        return XLSX
    if file_name.lower().endswith((".xlsx", ".xlsm")):
        raise ValidationError(
            "This file is not an Excel workbook (.xlsx), whatever its name says. Save it from "
            "your spreadsheet as an Excel workbook or as CSV."
        )
    return CSV


def refuse_oversized(size: int) -> None:
    """ValidationError for a file over the limit (checked before an upload is read, too)."""
    if size > MAX_FILE_BYTES:
        raise ValidationError("The file is larger than 5 MB. Split it into smaller files.")


def read_table(content: bytes, *, file_name: str) -> tuple[str, Table]:
    """The format and the rows of an uploaded file; ValidationError, with a message for the
    person who uploaded it, for anything that is not a usable table."""
    refuse_oversized(len(content))
    if not content.strip():
        raise ValidationError("The file is empty.")
    fmt = detect_format(content, file_name)
    cells = _read_xlsx(content) if fmt == XLSX else _read_csv(content)
    table = _table(cells)
    return fmt, table


def _table(lines: Iterator[tuple[int, list]]) -> Table:
    header: list[str] | None = None
    rows: list[tuple[int, list]] = []
    for line, cells in lines:
        while cells and (cells[-1] is None or cells[-1] == ""):
            cells = cells[:-1]
        if all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in cells):
            continue
        if header is None:
            if len(cells) > MAX_COLUMNS:
                raise ValidationError(f"The file has more than {MAX_COLUMNS} columns.")
            header = ["" if cell is None else str(cell).strip() for cell in cells]
            continue
        rows.append((line, cells))
        if len(rows) > MAX_ROWS:
            raise ValidationError(
                f"The file has more than {MAX_ROWS:,} rows. Split it into smaller files."
            )
    if header is None:
        raise ValidationError("The file is empty.")
    return Table(header=header, rows=rows)


def _read_csv(content: bytes) -> Iterator[tuple[int, list]]:
    if b"\x00" in content:
        raise ValidationError(
            "This file is not a CSV text file (it holds binary data, such as an image). "
            "Upload a CSV or an Excel workbook (.xlsx)."
        )
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = content[: error.start].count(b"\n") + 1
        raise ValidationError(
            f"Line {line} of the file is not UTF-8 text. Save the file as “CSV UTF-8” "
            "from your spreadsheet and upload it again."
        ) from error
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        for cells in reader:
            yield reader.line_num, [unneutralise(cell) for cell in cells]
    except csv.Error as error:
        raise ValidationError(
            f"Line {reader.line_num} of the file is not valid CSV ({error})."
        ) from error


def _read_xlsx(content: bytes) -> Iterator[tuple[int, list]]:
    _check_archive(content)
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=False)
    except Exception as error:  # openpyxl raises many kinds for a damaged file
        raise ValidationError(
            "This Excel workbook could not be read. Open it in your spreadsheet, save it "
            "again as .xlsx and upload it again."
        ) from error
    try:
        sheet = workbook.worksheets[0]
        for line, row in enumerate(sheet.iter_rows(max_col=MAX_COLUMNS + 1), start=1):
            yield line, [_xlsx_value(cell) for cell in row]
    finally:
        workbook.close()


def _xlsx_value(cell):
    value = getattr(cell, "value", None)
    if getattr(cell, "data_type", None) == "f":
        return Formula(str(value))
    if isinstance(value, str):
        return unneutralise(value)
    return value


def _check_archive(content: bytes) -> None:
    """Refuse a workbook that unpacks to more than it could honestly hold (a zip bomb),
    by the sizes its directory declares and the ratio of each member, before opening it."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as error:
        raise ValidationError(
            "This file is not an Excel workbook (.xlsx), whatever its name says."
        ) from error
    if len(members) > 1000:
        raise ValidationError("This Excel workbook holds too many parts to be read safely.")
    unpacked = sum(member.file_size for member in members)
    if unpacked > MAX_UNPACKED_BYTES or any(
        member.file_size > 1_000_000 and member.file_size > 200 * member.compress_size
        for member in members
    ):
        raise ValidationError(
            "This Excel workbook unpacks to far more data than a table of settings holds; it "
            "is refused. Save it again from your spreadsheet, or upload a CSV file."
        )

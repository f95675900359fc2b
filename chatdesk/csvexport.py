"""Every CSV download, streamed and spreadsheet-safe: the one definition of a safe cell.

A cell a spreadsheet would run as a formula (it starts with =, +, -, @ or a control character
such as a tab or a carriage return: OWASP's CSV injection list) gets a leading apostrophe, so
a customer's "=HYPERLINK(...)" is shown as text. Numbers and dates pass unchanged. Rows come
from a generator (a queryset's `.iterator(chunk_size=...)`), so memory stays flat however many
there are. A BOM first: Excel then reads the UTF-8 accents right.
"""

import csv

from django.http import StreamingHttpResponse

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@")


def cell_safe(value):
    """A text cell a spreadsheet would run, neutralised; other values unchanged."""
    if value is None:
        return ""
    if (
        isinstance(value, str)
        and value
        and (value.startswith(FORMULA_STARTS) or ord(value[0]) < 32)
    ):
        return "'" + value
    return value


class _Echo:
    def write(self, value):
        return value


def csv_lines(header, rows):
    writer = csv.writer(_Echo())
    yield BOM + writer.writerow([cell_safe(h) for h in header])
    for row in rows:
        yield writer.writerow([cell_safe(v) for v in row])


def csv_response(filename: str, header, rows) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        csv_lines(header, rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response

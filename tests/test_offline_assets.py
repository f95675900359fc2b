"""chatdesk works offline: nothing under static/ or a templates folder names a CDN, so no page
(nor a vendored library's default) can try to load code, styles, fonts or data from one."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CDN = re.compile(
    r"cdn\.jsdelivr\.net|unpkg\.com|cdnjs\.cloudflare\.com|esm\.sh|cdn\.skypack\.dev"
    r"|fonts\.googleapis\.com|fonts\.gstatic\.com|ajax\.googleapis\.com|stackpath\.bootstrapcdn"
)


def _assets():
    folders = [ROOT / "static", ROOT / "templates", *ROOT.glob("*/templates")]
    for folder in folders:
        for path in folder.rglob("*"):
            if path.suffix in {".js", ".mjs", ".css", ".html", ".json", ".svg"}:
                yield path


def test_no_static_file_or_template_names_a_cdn():
    found = [
        f"{path.relative_to(ROOT)}:{n}: {match.group(0)}"
        for path in _assets()
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        for match in CDN.finditer(line)
    ]
    assert found == []


def test_the_scan_reads_the_vendored_libraries():
    scanned = {path.relative_to(ROOT).as_posix() for path in _assets()}
    assert "static/vendor/emoji-picker/picker.js" in scanned
    assert "static/vendor/emoji-picker/database.js" in scanned
    assert any(name.startswith("inbox/templates/") for name in scanned)

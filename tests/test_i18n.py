"""The English catalogue: key strings translate, the pages switch language, the catalogue is whole.

The source speaks Spanish (msgids are Spanish); locale/en/LC_MESSAGES/django.po carries English
and django.mo its compiled form, both committed. These checks read the .po with a small parser
of their own (no gettext tools needed) and compare it with the catalogue Django really loads.
"""

import ast
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django.utils.translation import trans_real

PO_PATH = Path(settings.BASE_DIR) / "locale" / "en" / "LC_MESSAGES" / "django.po"
MO_PATH = PO_PATH.with_suffix(".mo")


# --- a minimal .po reader ---------------------------------------------------------------------


def _unquote(text: str) -> str:
    return ast.literal_eval(text) if text else ""


def parse_po(path: Path) -> list[dict]:
    """Entries as dicts: msgctxt, msgid, msgid_plural, msgstr (str) or msgstr[n] (dict),
    flags (set), obsolete (bool). The header (empty msgid) is included."""
    entries: list[dict] = []
    current: dict | None = None
    field: str | None = None

    def start() -> dict:
        entry = {"flags": set(), "msgstr_plural": {}, "obsolete": False}
        entries.append(entry)
        return entry

    pending_flags: set[str] = set()
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        obsolete = line.startswith("#~")
        if obsolete:
            line = line[2:].strip()
        if not line:
            current, field = None, None
            continue
        if line.startswith("#,"):
            pending_flags |= {f.strip() for f in line[2:].split(",") if f.strip()}
            continue
        if line.startswith("#"):
            continue
        match = re.match(r"(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(\".*\")$", line)
        if match:
            keyword, index, value = match.groups()
            new_entry = current is None or field not in (None, "msgctxt")
            if keyword in ("msgctxt", "msgid") and new_entry:
                current = start()
                current["flags"], pending_flags = pending_flags, set()
            assert current is not None, raw
            current["obsolete"] = current["obsolete"] or obsolete
            if index is not None:
                field = ("msgstr_plural", int(index))
                current["msgstr_plural"][int(index)] = _unquote(value)
            else:
                field = keyword
                current[keyword] = _unquote(value)
            continue
        assert line.startswith('"'), f"unexpected line in {path.name}: {raw!r}"
        assert current is not None and field is not None, raw
        if isinstance(field, tuple):
            current["msgstr_plural"][field[1]] += _unquote(line)
        else:
            current[field] += _unquote(line)
    return entries


@pytest.fixture(scope="module")
def po_entries():
    assert PO_PATH.exists(), "locale/en/LC_MESSAGES/django.po is missing"
    entries = [e for e in parse_po(PO_PATH) if not e["obsolete"]]
    assert entries and entries[0]["msgid"] == "", "the .po has no header"
    return entries[1:]


# --- (a) key strings translate ----------------------------------------------------------------

KEY_STRINGS = {
    "Conversaciones": "Conversations",
    "Panel": "Dashboard",
    "Campañas": "Campaigns",
    "Plantillas": "Templates",
    "Clientes": "Customers",
    "Analítica": "Analytics",
    "Automatizaciones": "Automations",
    "Salir": "Log out",
    "Iniciar sesión": "Log in",
    "Usuario": "Username",
    "Contraseña": "Password",
    "baja de publicidad": "marketing opt-out",
}


def test_key_strings_translate_to_english():
    with translation.override("en"):
        for spanish, english in KEY_STRINGS.items():
            assert translation.gettext(spanish) == english, spanish


def test_plurals_and_placeholders_translate():
    with translation.override("en"):
        one = translation.ngettext("vence en %(n)s día", "vence en %(n)s días", 1) % {"n": 1}
        many = translation.ngettext("vence en %(n)s día", "vence en %(n)s días", 5) % {"n": 5}
        revoked = translation.gettext("Token «%(name)s» revocado.") % {"name": "web"}
    assert (one, many) == ("expires in 1 day", "expires in 5 days")
    assert revoked == "Token “web” revoked."


def test_spanish_stays_the_default():
    with translation.override(settings.LANGUAGE_CODE):
        assert translation.gettext("Conversaciones") == "Conversaciones"


# --- (b) the login page in each language -------------------------------------------------------

ENGLISH_LOGIN = ("Log in", "Username", "Password", "WhatsApp customer service and campaigns")
SPANISH_LOGIN = ("Iniciar sesión", "Usuario", "Contraseña", "Entrar")


@pytest.mark.django_db
def test_login_page_is_spanish_by_default(client):
    html = client.get(reverse("login")).content.decode()
    for text in SPANISH_LOGIN:
        assert text in html
    assert "Username" not in html


@pytest.mark.django_db
def test_login_page_follows_the_language_cookie(client):
    # The language is the selector's choice (its cookie), not the browser's Accept-Language.
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    html = client.get(reverse("login")).content.decode()
    for text in ENGLISH_LOGIN:
        assert text in html
    assert "Contraseña" not in html
    assert 'lang="en"' in html


@pytest.mark.django_db
def test_set_language_switches_the_login_page(client):
    response = client.post(reverse("set_language"), {"language": "en", "next": reverse("login")})
    assert response.status_code == 302
    html = client.get(reverse("login")).content.decode()
    for text in ENGLISH_LOGIN:
        assert text in html
    # and back to Spanish
    client.post(reverse("set_language"), {"language": "es-ec", "next": reverse("login")})
    html = client.get(reverse("login")).content.decode()
    for text in SPANISH_LOGIN:
        assert text in html


@pytest.mark.django_db
def test_navigation_is_english_for_a_signed_in_user(client_for, alice):
    client = client_for(alice)
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    response = client.get("/", follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    for label in ("Dashboard", "Conversations", "Customers", "Log out"):
        assert label in html, label
    for label in ("Conversaciones", "Salir"):
        assert f">{label}<" not in html, label


# --- (c) the catalogue is whole ----------------------------------------------------------------


def test_po_has_no_empty_or_fuzzy_entries(po_entries):
    assert len(po_entries) > 100
    fuzzy = [e["msgid"] for e in po_entries if "fuzzy" in e["flags"]]
    empty = []
    for e in po_entries:
        if "msgid_plural" in e:
            forms = e["msgstr_plural"]
            if sorted(forms) != [0, 1] or not all(forms.values()):
                empty.append(e["msgid"])
        elif not e.get("msgstr"):
            empty.append(e["msgid"])
    assert not fuzzy, f"fuzzy entries: {fuzzy[:20]}"
    assert not empty, f"untranslated entries: {empty[:20]}"


PLACEHOLDER = re.compile(r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[a-zA-Z]|%%|\{\w*\}")


def test_translations_keep_placeholders_and_tags(po_entries):
    wrong = []
    for e in po_entries:
        if "msgid_plural" in e:
            pairs = [(e["msgid_plural"], e["msgstr_plural"].get(1, ""))]
            # The singular may drop the count ("First recipient"), never add one.
            if not set(PLACEHOLDER.findall(e["msgstr_plural"].get(0, ""))) <= set(
                PLACEHOLDER.findall(e["msgid_plural"])
            ):
                wrong.append(e["msgid"])
        else:
            pairs = [(e["msgid"], e.get("msgstr", ""))]
        for source, target in pairs:
            if sorted(PLACEHOLDER.findall(source)) != sorted(PLACEHOLDER.findall(target)):
                wrong.append(e["msgid"])
            if sorted(re.findall(r"</?\w+", source)) != sorted(re.findall(r"</?\w+", target)):
                wrong.append(e["msgid"])
    assert not wrong, f"placeholders or HTML tags changed: {wrong[:20]}"


# --- (d) the compiled .mo matches the .po ------------------------------------------------------


def test_compiled_catalogue_holds_every_entry(po_entries):
    assert MO_PATH.exists(), "run: manage.py compilemessages --ignore=.venv"
    trans_real._translations = {}  # reload from disk, not a cache from an earlier test
    trans_real._default = None
    catalog = trans_real.translation("en")._catalog
    missing, different = [], []
    for e in po_entries:
        key = e["msgid"] if "msgctxt" not in e else f"{e['msgctxt']}\x04{e['msgid']}"
        if "msgid_plural" in e:
            for n, text in e["msgstr_plural"].items():
                got = catalog.get((key, n))
                if got is None:
                    missing.append(e["msgid"])
                elif got != text:
                    different.append(e["msgid"])
        else:
            got = catalog.get(key)
            if got is None:
                missing.append(e["msgid"])
            elif got != e["msgstr"]:
                different.append(e["msgid"])
    hint = "django.mo is stale: run manage.py compilemessages --ignore=.venv"
    assert not missing, f"{hint}; missing: {missing[:20]}"
    assert not different, f"{hint}; different: {different[:20]}"

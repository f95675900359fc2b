"""CSV import of customers with their subscriptions.

Two phases. `customer_import_plan` reads the file and compares every row with the database
without writing: each row gets an outcome (create / update / unchanged / rejected with a
reason). `customer_import` then applies the good rows. All validation happens in the plan, so
writing cannot fail on bad data; the good rows are therefore applied together in one
transaction: an import either happened or it did not (a crash or a dead database half-way
leaves nothing half-done, and running it again is always safe because the import is
idempotent on the phone). Rejected rows are simply left out, so they never block the others.

Blank cells mean "no information": they never erase what the database knows. Tags are only
added. The marketing opt-out is never touched: an import must not re-subscribe anyone.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import Customer, CustomerImport, Renewal, Service, Subscription, Tag
from customers.phones import InvalidPhone, phone_normalize
from customers.services import tag_get_or_create


def import_max_bytes() -> int:
    """5 MB (about 50,000 rows) unless settings.CUSTOMER_IMPORT_MAX_BYTES says otherwise."""
    return getattr(settings, "CUSTOMER_IMPORT_MAX_BYTES", 5 * 1024 * 1024)


CREATE, UPDATE, UNCHANGED, REJECTED = "create", "update", "unchanged", "rejected"

# Canonical column -> accepted headers, compared after `_fold` (lowercase, no accents, no
# spaces or punctuation).
COLUMNS = {
    "nombre": ["nombre", "nombres", "cliente", "name", "fullname", "customer", "nombrecompleto"],
    "telefono": [
        "telefono",
        "celular",
        "movil",
        "whatsapp",
        "numero",
        "phone",
        "mobile",
        "phonenumber",
        "tel",
    ],
    "ciudad": ["ciudad", "city"],
    "provincia": ["provincia", "province", "state", "region"],
    "etiquetas": ["etiquetas", "etiqueta", "grupos", "tags", "tag", "labels"],
    "servicio": ["servicio", "plataforma", "plan", "service", "product"],
    "precio": ["precio", "monto", "valor", "price", "amount"],
    "inicio": ["inicio", "fechainicio", "desde", "start", "startdate", "startedon", "started"],
    "vence": [
        "vence",
        "vencimiento",
        "fechavencimiento",
        "hasta",
        "expira",
        "expiry",
        "expires",
        "expireson",
        "expiration",
        "end",
        "enddate",
    ],
    "notas": ["notas", "nota", "observaciones", "notes", "note", "comments"],
}
REQUIRED = ("nombre", "telefono")
HEADER_ALIASES = {alias: column for column, aliases in COLUMNS.items() for alias in aliases}
FACT_LABELS = {"name": "nombre", "city": "ciudad", "province": "provincia", "notes": "notas"}
MAX_LENGTHS = {"nombre": 120, "ciudad": 80, "provincia": 80}


class ImportFileError(ValueError):
    """The whole file is unusable (empty, not CSV, too big, a required column missing)."""


@dataclass
class RowResult:
    line: int
    outcome: str
    phone: str = ""  # E.164 when it parsed, else the raw text
    name: str = ""
    service: str = ""
    reason: str = ""
    changes: list[str] = field(default_factory=list)
    # What to write, kept for the apply phase.
    facts: dict = field(default_factory=dict, repr=False)
    tags: list[str] = field(default_factory=list, repr=False)
    subscription: dict | None = field(default=None, repr=False)


@dataclass
class ImportReport:
    rows: list[RowResult]
    dry_run: bool = True

    def count(self, outcome: str) -> int:
        return sum(1 for row in self.rows if row.outcome == outcome)

    @property
    def counts(self) -> dict[str, int]:
        return {o: self.count(o) for o in (CREATE, UPDATE, UNCHANGED, REJECTED)}

    @property
    def rejected(self) -> list[RowResult]:
        return [row for row in self.rows if row.outcome == REJECTED]


# --- reading the file ------------------------------------------------------------------------


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text or "")
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9+]", "", text.lower())


def import_decode(data: bytes) -> str:
    """Bytes from an upload to text: UTF-8 (with or without BOM), else Latin-1 (what Excel on
    Windows saves)."""
    if len(data) > import_max_bytes():
        raise ImportFileError(
            _("El archivo pesa más de %(mb)s MB; divídalo en partes más pequeñas.")
            % {"mb": round(import_max_bytes() / (1024 * 1024), 1)}
        )
    if not data.strip():
        raise ImportFileError(_("El archivo está vacío."))
    if b"\x00" in data[:4096] or data[:2] == b"PK":
        raise ImportFileError(
            _(
                "El archivo no es un CSV (¿una hoja de Excel?). "
                "Guárdelo como «CSV» e inténtelo de nuevo."
            )
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    if "\x00" in text:
        raise ImportFileError(_("El archivo no es un CSV de texto."))
    return text


def _header_columns(header: list[str]) -> list[str | None]:
    return [HEADER_ALIASES.get(_fold(cell)) for cell in header]


def _read(text: str) -> tuple[list[str | None], list[tuple[int, list[str]]]]:
    """Pick the delimiter that makes the header most recognisable (more robust than
    csv.Sniffer on short files and on files whose cells contain commas)."""
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise ImportFileError(_("El archivo está vacío."))
    first_line = text.splitlines()[0]
    best = max(
        (";", ",", "\t", "|"),
        key=lambda d: sum(1 for c in _header_columns(first_line.split(d)) if c),
    )
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=best)
        header = next(reader)
        columns = _header_columns(header)
        rows = []
        for cells in reader:
            if any(cell.strip() for cell in cells):
                rows.append((reader.line_num, cells))
    except csv.Error as exc:
        raise ImportFileError(
            _("El archivo no se puede leer como CSV: %(error)s") % {"error": exc}
        ) from exc
    found = [c for c in columns if c]
    for column in REQUIRED:
        if column not in found:
            raise ImportFileError(
                _("Falta la columna obligatoria «%(column)s». Columnas encontradas: %(found)s.")
                % {
                    "column": column,
                    "found": ", ".join(h.strip() for h in header if h.strip()) or "-",
                }
            )
    repeated = sorted({c for c in found if found.count(c) > 1})
    if repeated:
        raise ImportFileError(
            _("La columna «%(column)s» aparece más de una vez.") % {"column": repeated[0]}
        )
    if not rows:
        raise ImportFileError(_("El archivo no tiene filas de clientes, solo el encabezado."))
    return columns, rows


# --- cell parsers (each raises ValueError with a Spanish message) ------------------------------


def parse_date(text: str) -> date:
    text = text.strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(
        _("fecha inválida «%(value)s» (use AAAA-MM-DD o DD/MM/AAAA)") % {"value": text}
    )


def parse_price(text: str) -> Decimal:
    cleaned = re.sub(r"(?i)usd|us\$|\$|\s", "", text)
    if "," in cleaned and "." in cleaned:  # 1.234,56 or 1,234.56: the last one is decimal
        thousands = "." if cleaned.rfind(",") > cleaned.rfind(".") else ","
        cleaned = cleaned.replace(thousands, "")
    cleaned = cleaned.replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        value = None
    if (
        value is None
        or not value.is_finite()
        or value < 0
        or value >= 1_000_000
        or (value != value.quantize(Decimal("0.01")))
    ):
        raise ValueError(_("precio inválido «%(value)s» (ejemplo: 12.99)") % {"value": text})
    return value.quantize(Decimal("0.01"))


def _split_tags(text: str) -> list[str]:
    tags, seen = [], set()
    for part in re.split(r"[;|,]", text):
        name = " ".join(part.split())
        if name and name.lower() not in seen:
            seen.add(name.lower())
            tags.append(name)
    return tags


# --- planning -------------------------------------------------------------------------------


def _row_values(columns, cells) -> dict[str, str]:
    values = {}
    for column, cell in zip(columns, cells, strict=False):
        if column:
            values[column] = " ".join((cell or "").split()) if column != "notas" else cell.strip()
    return values


def _parse_row(values: dict[str, str], services: dict[str, Service]) -> RowResult:
    """A row on its own, before it meets the database or the other rows."""
    raw_phone = values.get("telefono", "")
    row = RowResult(line=0, outcome=CREATE, phone=raw_phone, name=values.get("nombre", ""))
    if not raw_phone:
        raise ValueError(_("falta el teléfono"))
    try:
        row.phone = phone_normalize(raw_phone)
    except InvalidPhone:
        raise ValueError(_("teléfono inválido «%(value)s»") % {"value": raw_phone}) from None
    for column, limit in MAX_LENGTHS.items():
        if len(values.get(column, "")) > limit:
            raise ValueError(
                _("«%(column)s» tiene más de %(limit)s caracteres")
                % {"column": column, "limit": limit}
            )
    row.facts = {
        attr: values[column]
        for column, attr in (
            ("nombre", "name"),
            ("ciudad", "city"),
            ("provincia", "province"),
            ("notas", "notes"),
        )
        if values.get(column)
    }
    row.tags = _split_tags(values.get("etiquetas", ""))
    if any(len(tag) > 60 for tag in row.tags):
        raise ValueError(_("una etiqueta tiene más de 60 caracteres"))

    service_name = values.get("servicio", "")
    if not service_name:
        if any(values.get(c) for c in ("precio", "inicio", "vence")):
            raise ValueError(_("hay precio o fechas pero falta el servicio"))
        return row
    service = services.get(_fold(service_name))
    if service is None:
        known = ", ".join(sorted(s.name for s in services.values())) or "-"
        raise ValueError(
            _("servicio desconocido «%(value)s»; los conocidos son: %(known)s")
            % {"value": service_name, "known": known}
        )
    row.service = service.name
    if not values.get("vence"):
        raise ValueError(
            _("falta la fecha de vencimiento de %(service)s") % {"service": service.name}
        )
    expires_on = parse_date(values["vence"])
    started_on = parse_date(values["inicio"]) if values.get("inicio") else None
    if started_on and expires_on < started_on:
        raise ValueError(
            _("el vencimiento (%(expires)s) es anterior al inicio (%(start)s)")
            % {"expires": expires_on.isoformat(), "start": started_on.isoformat()}
        )
    price = parse_price(values["precio"]) if values.get("precio") else None
    row.subscription = {
        "service": service,
        "started_on": started_on,
        "expires_on": expires_on,
        "price": price,
    }
    return row


def _conflict(row: RowResult, earlier: RowResult) -> str | None:
    """The same phone twice in one file must not say two different things."""
    for attr, label in (
        ("name", _("nombre")),
        ("city", _("ciudad")),
        ("province", _("provincia")),
        ("notes", _("notas")),
    ):
        mine, theirs = row.facts.get(attr), earlier.facts.get(attr)
        if mine and theirs and mine != theirs:
            return _(
                "el teléfono %(phone)s ya aparece en la línea %(line)s con otro %(field)s "
                "(«%(theirs)s» frente a «%(mine)s»)"
            ) % {
                "phone": row.phone,
                "line": earlier.line,
                "field": label,
                "theirs": theirs,
                "mine": mine,
            }
    if (
        row.subscription
        and earlier.subscription
        and (row.subscription["service"].pk == earlier.subscription["service"].pk)
    ):
        return _("el teléfono %(phone)s ya tiene %(service)s en la línea %(line)s") % {
            "phone": row.phone,
            "service": row.service,
            "line": earlier.line,
        }
    return None


def _chunks(items: list, size: int = 500):
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class Known:
    """What the database holds for one phone, read as plain values (model instances and
    prefetching cost seconds on a 50,000-row file)."""

    pk: int
    facts: dict
    tags: set[str] = field(default_factory=set)  # lowercased names
    subscriptions: dict[int, dict] = field(default_factory=dict)  # by service id


def _existing(phones: set[str]) -> dict[str, Known]:
    found: dict[str, Known] = {}
    by_pk: dict[int, Known] = {}
    for chunk in _chunks(sorted(phones)):
        for pk, phone, *values in Customer.objects.filter(phone__in=chunk).values_list(
            "pk", "phone", *FACT_LABELS
        ):
            found[phone] = by_pk[pk] = Known(
                pk=pk, facts=dict(zip(FACT_LABELS, values, strict=True))
            )
    ids = sorted(by_pk)
    through = Customer.tags.through.objects
    for chunk in _chunks(ids):
        for pk, name in through.filter(customer_id__in=chunk).values_list(
            "customer_id", "tag__name"
        ):
            by_pk[pk].tags.add(name.lower())
        for sub in Subscription.objects.filter(customer_id__in=chunk).values(
            "customer_id", "service_id", "started_on", "expires_on", "price"
        ):
            by_pk[sub["customer_id"]].subscriptions[sub["service_id"]] = sub
    return found


def _changes(
    row: RowResult,
    customer: Known | None,
    seen_tags: dict[str, set[str]],
    seen_facts: dict[str, dict],
) -> list[str]:
    """What the row changes, against the database as it will be after the file's earlier rows
    for the same phone."""
    changes = []
    new_customer = customer is None and row.phone not in seen_facts
    if new_customer:
        changes.append(_("cliente nuevo"))
    facts = seen_facts.setdefault(
        row.phone,
        dict(customer.facts) if customer else {},
    )
    for attr, value in row.facts.items():
        if facts.get(attr, "") != value:
            if not new_customer:
                changes.append(f"{_(FACT_LABELS[attr])}: «{facts.get(attr, '')}» → «{value}»")
            facts[attr] = value
    tags = seen_tags.setdefault(row.phone, set(customer.tags) if customer else set())
    new_tags = [t for t in row.tags if t.lower() not in tags]
    if new_tags:
        changes.append(_("etiquetas: + %(tags)s") % {"tags": ", ".join(new_tags)})
        tags.update(t.lower() for t in new_tags)
    sub = row.subscription
    if sub:
        current = customer.subscriptions.get(sub["service"].pk) if customer else None
        sub["exists"] = current is not None
        if current is None:
            changes.append(
                _("%(service)s nuevo, vence %(date)s")
                % {"service": row.service, "date": sub["expires_on"].isoformat()}
            )
        else:
            for attr, label in (
                ("started_on", _("inicio")),
                ("expires_on", _("vence")),
                ("price", _("precio")),
            ):
                value = sub[attr]
                if value is not None and value != current[attr]:
                    changes.append(f"{row.service} {label}: {current[attr]} → {value}")
            if sub["expires_on"] > current["expires_on"]:
                changes.append(_("se registra una renovación"))
    return changes


def customer_import_plan(*, text: str) -> ImportReport:
    """What importing `text` would do, row by row, without writing anything."""
    columns, raw_rows = _read(text)
    services = {_fold(s.name): s for s in Service.objects.all()}
    parsed: list[RowResult] = []
    for line, cells in raw_rows:
        values = _row_values(columns, cells)
        extra = [c for c in cells[len(columns) :] if c.strip()]
        try:
            if extra:
                raise ValueError(_("la fila tiene más celdas que el encabezado"))
            row = _parse_row(values, services)
        except ValueError as exc:
            row = RowResult(
                line=line,
                outcome=REJECTED,
                phone=values.get("telefono", ""),
                name=values.get("nombre", ""),
                service=values.get("servicio", ""),
                reason=str(exc),
            )
        row.line = line
        parsed.append(row)

    existing = _existing({r.phone for r in parsed if r.outcome != REJECTED})
    first_by_phone: dict[str, list[RowResult]] = {}
    seen_tags: dict[str, set[str]] = {}
    seen_facts: dict[str, dict] = {}
    for row in parsed:
        if row.outcome == REJECTED:
            continue
        earlier_rows = first_by_phone.setdefault(row.phone, [])
        reason = next((r for r in (_conflict(row, e) for e in earlier_rows) if r), None)
        if reason:
            row.outcome, row.reason = REJECTED, reason
            continue
        customer = existing.get(row.phone)
        row.changes = _changes(row, customer, seen_tags, seen_facts)
        row.outcome = _outcome(row, customer, bool(earlier_rows))
        earlier_rows.append(row)
    return ImportReport(rows=parsed)


def _outcome(row: RowResult, customer: Known | None, repeated: bool) -> str:
    """create: a new customer or a new subscription; update: something changes."""
    if (customer is None and not repeated) or (row.subscription and not row.subscription["exists"]):
        return CREATE
    return UPDATE if row.changes else UNCHANGED


# --- applying -------------------------------------------------------------------------------


def _customers_ensure(rows: list[RowResult]) -> dict[str, Customer]:
    """Every phone of `rows` as a Customer, the missing ones created in bulk with their
    merged facts (conflicting rows were rejected, so merging in line order is safe)."""
    phones = sorted({row.phone for row in rows})
    customers = {}
    for chunk in _chunks(phones):
        customers.update((c.phone, c) for c in Customer.objects.filter(phone__in=chunk))
    new: dict[str, dict] = {}
    for row in rows:
        if row.phone not in customers:
            new.setdefault(row.phone, {}).update(row.facts)
    try:
        with transaction.atomic():
            created = Customer.objects.bulk_create(
                [Customer(phone=phone, **facts) for phone, facts in new.items()], batch_size=1000
            )
        customers.update((c.phone, c) for c in created)
    except IntegrityError:
        # Someone (the webhook) created one of them meanwhile: take the slow, safe path.
        for phone, facts in new.items():
            customer, _created = Customer.objects.get_or_create(phone=phone, defaults=facts)
            customers[phone] = customer
    return customers


def _tags_ensure(rows: list[RowResult]) -> dict[str, Tag]:
    names = {name.lower(): name for row in rows for name in row.tags}
    tags = {t.name.lower(): t for t in Tag.objects.all()}
    for lower, name in names.items():
        if lower not in tags:
            tags[lower] = tag_get_or_create(name=name)
    return tags


def _apply(rows: list[RowResult]) -> None:
    """Writes in bulk: a 50,000-row file is applied in seconds, not minutes."""
    customers = _customers_ensure(rows)
    for row in rows:
        customer = customers[row.phone]
        changed = [a for a, v in row.facts.items() if getattr(customer, a) != v]
        for attr in changed:
            setattr(customer, attr, row.facts[attr])
        if changed:
            customer.save(update_fields=changed)

    tags = _tags_ensure(rows)
    through = Customer.tags.through
    links = {(customers[r.phone].pk, tags[t.lower()].pk) for r in rows for t in r.tags}
    through.objects.bulk_create(
        [through(customer_id=c, tag_id=t) for c, t in sorted(links)],
        batch_size=1000,
        ignore_conflicts=True,  # a tag the customer already has
    )

    ids = sorted({c.pk for c in customers.values()})
    current = {}
    for chunk in _chunks(ids):
        for sub in Subscription.objects.filter(customer_id__in=chunk):
            current[(sub.customer_id, sub.service_id)] = sub
    new_subs, renewals = [], []
    for row in rows:
        sub = row.subscription
        if not sub:
            continue
        customer, service = customers[row.phone], sub["service"]
        existing = current.get((customer.pk, service.pk))
        if existing is None:
            new_subs.append(
                Subscription(
                    customer=customer,
                    service=service,
                    started_on=sub["started_on"] or min(timezone.localdate(), sub["expires_on"]),
                    expires_on=sub["expires_on"],
                    price=sub["price"] if sub["price"] is not None else service.normal_price,
                )
            )
            continue
        previous_expiry = existing.expires_on
        updates = [
            a
            for a in ("started_on", "expires_on", "price")
            if sub[a] is not None and getattr(existing, a) != sub[a]
        ]
        for attr in updates:
            setattr(existing, attr, sub[attr])
        if updates:
            existing.save(update_fields=updates)
        # A later expiry coming from the owner's books is a renewal; conversion counts these.
        if existing.expires_on > previous_expiry:
            renewals.append(
                Renewal(
                    subscription=existing,
                    previous_expiry=previous_expiry,
                    new_expiry=existing.expires_on,
                    amount=existing.price,
                )
            )
    Subscription.objects.bulk_create(new_subs, batch_size=1000)
    Renewal.objects.bulk_create(renewals, batch_size=1000)


def customer_import(*, text: str, dry_run: bool = False) -> ImportReport:
    """Plan the import; unless `dry_run`, apply every good row in one transaction."""
    report = customer_import_plan(text=text)
    report.dry_run = dry_run
    good = [row for row in report.rows if row.outcome in (CREATE, UPDATE)]
    if not dry_run and good:
        with transaction.atomic():
            _apply(good)
    return report


def customer_import_bytes(*, data: bytes, dry_run: bool = False) -> ImportReport:
    return customer_import(text=import_decode(data), dry_run=dry_run)


def customer_import_record(
    *, report: ImportReport, filename: str, user=None, at: datetime | None = None
) -> CustomerImport:
    """Keep what a confirmed import did (its counts and rejected lines), for the import page."""
    counts = report.counts
    rejected = [
        {"line": r.line, "phone": r.phone, "name": r.name, "reason": r.reason}
        for r in report.rejected[: CustomerImport.REJECTED_KEPT]
    ]
    return CustomerImport.objects.create(
        filename=filename[:200],
        created_by=user,
        created_at=at or timezone.now(),
        created=counts[CREATE],
        updated=counts[UPDATE],
        unchanged=counts[UNCHANGED],
        rejected=counts[REJECTED],
        rejected_rows=rejected,
    )

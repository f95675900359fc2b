"""Demo data for `manage.py seed_demo`: a believable month of a streaming reseller in Ecuador.

Everything is drawn from one `random.Random(seed)` and dated from one `now` anchor, so the same
pair always gives the same rows (the tests compare fingerprints). Rows are bulk-created as if they
had always been there: nothing here calls the provider, enqueues work or publishes live events.
"""

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.apps import apps
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.db.models import DateField, DateTimeField, F, Max
from django.utils import timezone

from chatdesk.models import DemoClock
from chatdesk.roles import ADMIN, AGENT, MARKETER, ROLE_LABELS
from customers.importer import customer_import, customer_import_record
from customers.models import Customer, CustomerImport, Renewal, Service, Subscription, Tag
from customers.phones import InvalidPhone, phone_normalize
from inbox.models import Conversation, Message, Resolution, SessionState
from inbox.services import (
    conversation_get_or_create,
    conversation_last_message_note,
    session_state_set,
)
from outbound.campaigns.control import campaign_cancel, campaign_pause
from outbound.campaigns.create import campaign_create, campaign_retarget
from outbound.campaigns.launch import campaign_launch
from outbound.models import (
    Campaign,
    CampaignRecipient,
    MessageTemplate,
    ReminderRule,
    ReminderSent,
)

DEFAULT_SEED = 2025
DEMO_URL = "http://127.0.0.1:8000"
GYE = ZoneInfo("America/Guayaquil")
CUSTOMER_COUNT = 200
CONVERSATION_COUNT = 120
HISTORY_DAYS = 30

Author = Message.Author
Status = Message.Status


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    first_name: str
    last_name: str
    role: str
    superuser: bool = False


DEMO_USERS = (
    DemoUser("admin", "chatdesk-admin", "Patricia", "Andrade", ADMIN, superuser=True),
    DemoUser("agente", "chatdesk-agente", "Ana", "Torres", AGENT),
    DemoUser("agente2", "chatdesk-agente2", "Luis", "Mora", AGENT),
    DemoUser("marketing", "chatdesk-marketing", "Sofía", "Ruiz", MARKETER),
)

# (name, USD price, popularity weight)
SERVICES = (
    ("Netflix", "12.99", 30),
    ("HBO Max", "9.99", 14),
    ("Disney+", "8.99", 16),
    ("Prime Video", "6.99", 12),
    ("Spotify", "5.99", 14),
    ("YouTube Premium", "7.99", 7),
    ("Paramount+", "5.99", 4),
    ("Crunchyroll", "4.99", 3),
)

# The first four as outbound/migrations/0002_example_templates.py ships them (the proposal's own).
TEMPLATES = (
    (
        "Promoción",
        MessageTemplate.Category.MARKETING,
        "🎬 ¡Hola {nombre}!\n\n"
        "🔥 *OFERTA ESPECIAL* para ti:\n"
        "{servicio} con {descuento}% de descuento\n\n"
        "💰 Solo ${precio_descuento} (antes ${precio_normal})\n"
        "⏰ Válido hasta {fecha_limite}\n\n"
        '¿Te interesa? Responde "SÍ" para activar.',
    ),
    (
        "Nuevo servicio",
        MessageTemplate.Category.MARKETING,
        "📺 ¡Novedad {nombre}!\n\n"
        "Ahora tenemos *{nuevo_servicio}* disponible:\n"
        "✨ {caracteristicas}\n"
        "💰 Precio especial: ${precio}\n\n"
        "¿Quieres agregarlo a tu plan?",
    ),
    (
        "Soporte",
        MessageTemplate.Category.SUPPORT,
        "👋 Hola {nombre}\n\n"
        "Recibimos tu consulta sobre {tema}.\n"
        "Un agente te contactará en las próximas 2 horas.\n\n"
        '¿Es urgente? Responde "URGENTE"',
    ),
    (
        "Vencimiento",
        MessageTemplate.Category.NOTIFICATION,
        "⏰ Hola {nombre}, tu *{servicio}* vence el {fecha_vencimiento} "
        "(faltan {dias_restantes} días).\n\n"
        "Renueva por ${precio} y sigue disfrutando sin cortes.\n"
        '¿Deseas renovar? Responde "SÍ".',
    ),
    (
        "Pago recibido",
        MessageTemplate.Category.SUPPORT,
        "✅ ¡Pago recibido, {nombre}! Tu {servicio} quedó renovado hasta el {fecha_vencimiento}.\n"
        "Gracias por confiar en nosotros 🙌",
    ),
    (
        "Recordatorio de pago",
        MessageTemplate.Category.NOTIFICATION,
        "Hola {nombre} 👋 Tu {servicio} venció y el pago de ${precio} está pendiente.\n"
        "Puedes pagar hasta el {fecha_limite} para no perder tu perfil. Responde PAGAR y te "
        "enviamos los datos.",
    ),
)
# The history is written from these texts, whatever an admin has since made of the rows.
BODIES = {name: body for name, _category, body in TEMPLATES}

FEMALE_NAMES = (
    "María",
    "Ana",
    "Gabriela",
    "Daniela",
    "Andrea",
    "Carolina",
    "Fernanda",
    "Valeria",
    "Paola",
    "Verónica",
    "Jessica",
    "Katherine",
    "Mishell",
    "Estefanía",
    "Lorena",
    "Diana",
    "Mónica",
    "Johanna",
    "Cristina",
    "Karla",
    "Nathaly",
    "Doménica",
    "Camila",
    "Isabel",
    "Rosa",
    "Lucía",
    "Mayra",
    "Silvia",
    "Tatiana",
    "Alexandra",
    "Belén",
    "Pamela",
    "Ximena",
    "Gissela",
    "Evelyn",
    "María José",
    "María Fernanda",
    "María Belén",
    "Ana Lucía",
    "Ana Cristina",
)
MALE_NAMES = (
    "José",
    "Juan",
    "Carlos",
    "Luis",
    "Jorge",
    "Diego",
    "Andrés",
    "Santiago",
    "Sebastián",
    "Fernando",
    "Christian",
    "Javier",
    "Xavier",
    "Pablo",
    "Miguel",
    "David",
    "Francisco",
    "Mateo",
    "Bryan",
    "Kevin",
    "Jonathan",
    "Ricardo",
    "Edison",
    "Wilson",
    "Marco",
    "Esteban",
    "Darío",
    "Galo",
    "Byron",
    "Fabián",
    "Henry",
    "Iván",
    "Patricio",
    "Roberto",
    "Washington",
    "Juan Carlos",
    "José Luis",
    "Luis Fernando",
    "Juan Pablo",
    "Carlos Andrés",
)
SURNAMES = (
    "González",
    "Rodríguez",
    "Zambrano",
    "Sánchez",
    "Vera",
    "Pérez",
    "Mendoza",
    "Torres",
    "López",
    "Castro",
    "Andrade",
    "Moreira",
    "Morales",
    "Ramírez",
    "Flores",
    "Chávez",
    "Jiménez",
    "Cedeño",
    "Vásquez",
    "Álvarez",
    "Espinoza",
    "Romero",
    "Herrera",
    "Ortiz",
    "Salazar",
    "Villacís",
    "Guerrero",
    "Suárez",
    "Benítez",
    "Carrión",
    "Loor",
    "Macías",
    "Intriago",
    "Ponce",
    "Cevallos",
    "Paredes",
    "Naranjo",
    "Cárdenas",
    "Pazmiño",
    "Ochoa",
    "Yépez",
    "Aguirre",
    "Bravo",
    "Tapia",
    "Quishpe",
    "Guamán",
    "Chiluisa",
    "Tituaña",
    "Carrillo",
    "Calderón",
    "Arias",
    "Viteri",
    "Jaramillo",
    "Montalvo",
    "Proaño",
    "Ordóñez",
    "Palacios",
    "Mejía",
    "Coronel",
    "Alvarado",
)
# (city, province, weight)
CITIES = (
    ("Quito", "Pichincha", 30),
    ("Guayaquil", "Guayas", 28),
    ("Cuenca", "Azuay", 9),
    ("Santo Domingo", "Santo Domingo de los Tsáchilas", 5),
    ("Ambato", "Tungurahua", 5),
    ("Manta", "Manabí", 5),
    ("Portoviejo", "Manabí", 4),
    ("Machala", "El Oro", 4),
    ("Loja", "Loja", 4),
    ("Durán", "Guayas", 3),
    ("Riobamba", "Chimborazo", 3),
    ("Ibarra", "Imbabura", 3),
    ("Sangolquí", "Pichincha", 2),
    ("Esmeraldas", "Esmeraldas", 2),
    ("Latacunga", "Cotopaxi", 2),
    ("Quevedo", "Los Ríos", 2),
    ("Salinas", "Santa Elena", 1),
    ("Babahoyo", "Los Ríos", 1),
)
TAGS = ("VIP", "Familia", "Referido", "Quito norte", "Quito sur", "Pago puntual", "Revendedor")
NOTES = (
    "Prefiere que le escriban en la tarde.",
    "Paga por transferencia Banco Pichincha.",
    "Paga con Deuna, manda el comprobante por WhatsApp.",
    "Comparte la cuenta con su hermana.",
    "Cliente desde 2022, siempre puntual.",
    "Pidió factura con RUC.",
    "Usa el perfil 2 de la cuenta familiar.",
    "Tuvo problemas con el PIN del perfil; ya se resolvió.",
    "Lo refirió su primo; darle trato preferente.",
    "Tiene Smart TV antiguo, a veces no carga Disney+.",
    "Renueva siempre el día del pago de quincena.",
)
OPT_OUT_REASONS = (
    "Respondió STOP a una promoción",
    "Pidió por llamada no recibir promociones",
    "Dijo que le llegan demasiados mensajes",
    "Respondió NO MÁS",
)
NO_WHATSAPP = (1, "El número no tiene WhatsApp")
FAILURES = (
    (3, "Sesión de WhatsApp desconectada; se agotaron los reintentos"),
    (3, "Límite de envíos del proveedor alcanzado; se agotaron los reintentos"),
    (3, "Tiempo de espera agotado al contactar a WaSender"),
)
MONTHS = (
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
)
HOURS = {
    8: 3,
    9: 6,
    10: 8,
    11: 8,
    12: 7,
    13: 5,
    14: 5,
    15: 6,
    16: 6,
    17: 6,
    18: 8,
    19: 9,
    20: 9,
    21: 6,
    22: 2,
}
FIXED_CUSTOMERS = (  # the fixtures' customers, always present
    ("María González", "+593968196046", "Quito", "Pichincha"),
    ("Carlos Pérez", "+593987654321", "Guayaquil", "Guayas"),
)
MARIA, CARLOS = (phone for _n, phone, _c, _p in FIXED_CUSTOMERS)
PAY_LINK = "https://pagos.example.com/l/"
AFTER_HOURS = (
    "Hola 👋 Gracias por escribirnos. Nuestro horario es de 8:00 a 21:00; te respondemos apenas "
    "abramos."
)
RENEW_ACK = "Perfecto, te ayudo con la renovación 🙌 Un agente te escribe en unos minutos."
# The reminder rules outbound's migration 0004 ships (the history's reminders are theirs).
RULE_BEFORE = "3 días antes del vencimiento"
RULE_AFTER = "Recordatorio de pago (1 día después)"


# --- small helpers ----------------------------------------------------------------------------


def demo_now() -> datetime:
    """The default anchor: now, rounded down to the hour."""
    return timezone.now().replace(minute=0, second=0, microsecond=0)


def _at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second), tzinfo=GYE)


def _es_date(day: date) -> str:
    return f"{day.day} de {MONTHS[day.month - 1]}"


def _render(body: str, **values) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), m.group(0))), body)


def _pick(rng: random.Random, weighted: dict):
    return rng.choices(list(weighted), weights=list(weighted.values()))[0]


def _first(name: str) -> str:
    return name.split()[0]


# --- users, services, templates ---------------------------------------------------------------


def demo_users_ensure() -> dict[str, User]:
    """Create or reset the demo users, so the printed passwords always work after a seed."""
    users = {}
    for spec in DEMO_USERS:
        user, _ = User.objects.get_or_create(username=spec.username)
        user.first_name, user.last_name = spec.first_name, spec.last_name
        user.email = f"{spec.username}@chatdesk.example"
        user.is_active = True
        user.is_staff = spec.superuser
        user.is_superuser = spec.superuser
        user.set_password(spec.password)
        user.save()
        user.groups.set([Group.objects.get_or_create(name=spec.role)[0]])
        users[spec.username] = user
    return users


def demo_services_ensure() -> dict[str, Service]:
    services = {}
    for name, price, _weight in SERVICES:
        services[name], _ = Service.objects.update_or_create(
            name=name, defaults={"normal_price": Decimal(price), "active": True}
        )
    return services


def demo_templates_ensure() -> None:
    """Add the missing ones; a template that already exists is the owner's, left alone."""
    for name, category, body in TEMPLATES:
        MessageTemplate.objects.get_or_create(
            name=name, defaults={"category": category, "body": body}
        )


def demo_credentials_box() -> str:
    rows = [f"chatdesk demo: {DEMO_URL}", ""]
    rows += [
        f"{u.username:<10} {u.password:<19} {u.first_name} {u.last_name} ({ROLE_LABELS[u.role]})"
        for u in DEMO_USERS
    ]
    width = max(len(row) for row in rows)
    line = "+" + "-" * (width + 2) + "+"
    return "\n".join([line, *(f"| {row:<{width}} |" for row in rows), line])


# --- the customer book ------------------------------------------------------------------------


@dataclass(eq=False)
class Person:
    customer: Customer
    tags: list[str] = field(default_factory=list)
    subs: list[Subscription] = field(default_factory=list)
    renewals: list[Renewal] = field(default_factory=list)
    new: bool = False
    fixed: bool = False


@dataclass
class World:
    rng: random.Random
    now: datetime
    today: date
    services: dict[str, Service]
    users: dict[str, User]
    people: list[Person] = field(default_factory=list)
    wa_ids: set[str] = field(default_factory=set)
    stopped: set[int] = field(default_factory=set)  # id() of people who answered BAJA
    provider_msg_id: int = 48_210_000
    reminders_per_day: Counter = field(default_factory=Counter)
    tagged: list = field(default_factory=list)  # (Line.tag, Message) once the history is built
    resolutions: list = field(default_factory=list)  # Resolution rows, saved after conversations


def _phone_new(rng: random.Random, taken: set[str]) -> str:
    while True:
        raw = f"+5939{rng.choice('9998886673')}{rng.randrange(10**7):07d}"
        try:
            phone = phone_normalize(raw)
        except InvalidPhone:
            continue
        if phone not in taken:
            taken.add(phone)
            return phone


def _name_new(rng: random.Random) -> str:
    first = rng.choice(FEMALE_NAMES if rng.random() < 0.52 else MALE_NAMES)
    one, two = rng.sample(SURNAMES, 2)
    return f"{first} {one} {two}"


def _believable_time(rng: random.Random, day: date) -> datetime:
    return _at(day, _pick(rng, HOURS), rng.randrange(60), rng.randrange(60))


def _people_build(w: World) -> None:
    rng, taken = w.rng, {phone for _n, phone, _c, _p in FIXED_CUSTOMERS}
    cities = {(c, p): weight for c, p, weight in CITIES}
    for i in range(CUSTOMER_COUNT):
        if i < len(FIXED_CUSTOMERS):
            name, phone, city, province = FIXED_CUSTOMERS[i]
        else:
            name, phone = _name_new(rng), _phone_new(rng, taken)
            city, province = _pick(rng, cities)
        customer = Customer(name=name, phone=phone, city=city, province=province)
        fixed = i < len(FIXED_CUSTOMERS)
        person = Person(customer, new=not fixed and rng.random() < 0.08, fixed=fixed)
        _subs_build(w, person)
        _customer_details(w, person)
        w.people.append(person)


def _maria_day(w: World) -> date:
    """María's reminder conversation happens today, or yesterday when it is still early."""
    return w.today if w.now.astimezone(GYE).hour >= 10 else w.today - timedelta(days=1)


def _service_names(rng: random.Random, person: Person) -> list[str]:
    weights = {name: weight for name, _p, weight in SERVICES}
    if person.customer.phone == CARLOS:
        del weights["HBO Max"]  # what he writes to ask for
    count = _pick(rng, {1: 50, 2: 35, 3: 15})
    names = ["Netflix"] if person.customer.phone == MARIA else []
    while len(names) < count:
        name = _pick(rng, weights)
        if name not in names:
            names.append(name)
    return names


def _subs_build(w: World, person: Person) -> None:
    rng, today = w.rng, w.today
    names = _service_names(rng, person)
    if person.new:
        age = rng.randrange(7)
        created = min(_believable_time(rng, today - timedelta(days=age)), w.now)
        person.customer.created_at = created
        for name in names:
            started = created.astimezone(GYE).date()
            _sub_add(w, person, name, started, started + timedelta(days=30), created)
        return
    for name in names:
        days_left = _days_left(rng)
        period = 30 if days_left <= 3 else _pick(rng, {30: 85, 90: 10, 365: 5})
        periods = rng.randint(2, 14) if rng.random() < 0.3 else 1
        if person.customer.phone == MARIA and name == "Netflix":
            days_left, period, periods = (_maria_day(w) - today).days + 3, 30, 8
        expires = today + timedelta(days=days_left)
        started = expires - timedelta(days=period * periods)
        sub = _sub_add(w, person, name, started, expires, None)
        previous = expires - timedelta(days=period)
        if periods > 1 and today - timedelta(days=HISTORY_DAYS - 1) <= previous <= today:
            _renewal_add(w, person, sub, previous)
    first_start = min(sub.started_on for sub in person.subs)
    created = _believable_time(rng, first_start - timedelta(rng.randrange(4)))
    person.customer.created_at = min(created, w.now)
    for sub in person.subs:
        sub.created_at = min(max(person.customer.created_at, _at(sub.started_on, 12)), w.now)


def _days_left(rng: random.Random) -> int:
    kind = _pick(rng, {"today": 4, "soon": 13, "active": 48, "recent": 13, "old": 22})
    return {
        "today": lambda: 0,
        "soon": lambda: rng.randint(1, 3),
        "active": lambda: rng.randint(4, 30),
        "recent": lambda: -rng.randint(1, 10),
        "old": lambda: -rng.randint(11, 150),
    }[kind]()


def _sub_add(w, person, name, started, expires, created) -> Subscription:
    normal = w.services[name].normal_price
    discounted = (normal * Decimal("0.85")).quantize(Decimal("0.01"))
    price = normal if w.rng.random() < 0.85 else discounted
    if person.customer.phone == MARIA and name == "Netflix":
        price = normal  # "Son $12.99"
    sub = Subscription(
        customer=person.customer,
        service=w.services[name],
        price=price,
        started_on=started,
        expires_on=expires,
        created_at=created or w.now,
    )
    person.subs.append(sub)
    return sub


def _renewal_add(w: World, person: Person, sub: Subscription, previous: date) -> None:
    first_day = w.today - timedelta(days=HISTORY_DAYS - 1)
    day = max(previous + timedelta(days=w.rng.randint(-3, 1)), first_day)
    renewed = min(_believable_time(w.rng, min(day, w.today)), w.now)
    person.renewals.append(
        Renewal(
            subscription=sub,
            renewed_at=renewed,
            previous_expiry=previous,
            new_expiry=sub.expires_on,
            amount=sub.price,
        )
    )


def _customer_details(w: World, person: Person) -> None:
    rng, c = w.rng, person.customer
    if rng.random() < 0.08:
        person.tags.append("VIP")
    if len(person.subs) == 3 or rng.random() < 0.06:
        person.tags.append("Familia")
    if rng.random() < 0.10:
        person.tags.append("Referido")
    if c.city == "Quito" and rng.random() < 0.6:
        person.tags.append(rng.choice(("Quito norte", "Quito sur")))
    if rng.random() < 0.08:
        person.tags.append("Pago puntual")
    if rng.random() < 0.03:
        person.tags.append("Revendedor")
    if rng.random() < 0.12:
        c.notes = rng.choice(NOTES)
    if not person.new and not person.fixed and rng.random() < 0.025:
        days = rng.randint(35, 200)
        c.marketing_opt_out_at = max(c.created_at, w.now - timedelta(days=days, hours=3))
        c.marketing_opt_out_reason = rng.choice(OPT_OUT_REASONS)


# --- conversations ----------------------------------------------------------------------------


@dataclass
class Line:
    author: str
    body: str
    gap: int = 0  # seconds after the previous line of the episode
    agent: User | None = None
    mark: object = None  # called with the line's time once it is laid out
    reach: bool = False  # its send does not fail (a follow-up went to those it reached)
    fails: bool = False  # its send fails (with one of FAILURES' reasons)
    # ("reminder", rule name, subscription, expiry) or ("campaign", key, variant label):
    # the message is then recorded as that reminder or that campaign's send (_business).
    tag: tuple = ()


@dataclass
class Episode:
    start: datetime
    lines: list[Line]
    closes: bool = False  # a human closed the matter: the conversation ends resolved
    essential: bool = False  # moved later rather than dropped when it collides
    urgent: bool = False


def _customer(body: str, lo: int = 30, hi: int = 900) -> tuple:
    return (Author.CUSTOMER, body, lo, hi)


def _lines(rng: random.Random, agent: User, steps) -> list[Line]:
    """Steps are (author, body, min gap, max gap); agent steps are spoken by `agent`."""
    lines = []
    for author, body, lo, hi in steps:
        who = agent if author == Author.AGENT else None
        lines.append(Line(author, body, rng.randint(lo, hi), who))
    return lines


def _agent(body: str, lo: int = 60, hi: int = 1200) -> tuple:
    return (Author.AGENT, body, lo, hi)


def _bot(body: str) -> tuple:
    return (Author.BOT, body, 2, 8)


def _payment_confirm(w: World, name: str, sub: Subscription, expiry: date) -> str:
    return _render(
        BODIES["Pago recibido"],
        nombre=_first(name),
        servicio=sub.service.name,
        fecha_vencimiento=_es_date(expiry),
    )


def _reminder_line(
    w: World, day: date, body: str, *, sub: Subscription, expiry: date
) -> tuple[datetime, Line]:
    """Reminders go out at 09:00, a few seconds apart (the pacing of the send pipeline)."""
    n = w.reminders_per_day[day]
    w.reminders_per_day[day] += 1
    line = Line(Author.REMINDER, body, tag=("reminder", RULE_BEFORE, sub, expiry))
    return _at(day, 9) + timedelta(seconds=n * 3 + w.rng.randint(0, 2)), line


def _expiry_body(w: World, name: str, sub: Subscription) -> str:
    return _render(
        BODIES["Vencimiento"],
        nombre=_first(name),
        servicio=sub.service.name,
        dias_restantes=3,
        precio=sub.price,
        fecha_vencimiento=_es_date(sub.expires_on),
    )


def _renewal_episode(w: World, person: Person, renewal: Renewal, agent: User) -> Episode:
    rng, sub, name = w.rng, renewal.subscription, person.customer.name
    svc = sub.service.name
    steps = [
        _customer(
            rng.choice(
                (
                    "Gracias, quiero renovar",
                    "Sí, quiero renovar 🙌",
                    f"Hola, sí renuevo el {svc}",
                    "Dale, renuevo",
                )
            ),
            300,
            14400,
        ),
        _bot(RENEW_ACK),
        _customer(
            rng.choice(("¿Cuánto cuesta?", "¿Sigue al mismo precio?", "¿Cuánto es?")), 30, 300
        ),
        _agent(
            f"Son ${sub.price}, te envío el link de pago: {PAY_LINK}{rng.getrandbits(24):06X}",
            120,
            900,
        ),
        _customer(
            rng.choice(
                (
                    "Listo, ya pagué ✅",
                    "Ya transferí, les mando el comprobante",
                    "Pagado, gracias",
                    "Ya está, revisen porfa",
                )
            ),
            300,
            5400,
        ),
        _agent(_payment_confirm(w, name, sub, renewal.new_expiry), 120, 1200),
    ]
    lines = _lines(rng, agent, steps)
    lines[-1].mark = lambda t: setattr(renewal, "renewed_at", t)
    reminder_day = renewal.previous_expiry - timedelta(days=3)
    if reminder_day >= w.today - timedelta(days=HISTORY_DAYS - 1):
        start, first = _reminder_line(
            w, reminder_day, _expiry_body(w, name, sub), sub=sub, expiry=renewal.previous_expiry
        )
        return Episode(start, [first, *lines], closes=True, essential=True)
    lines[0].body = f"Hola, quiero renovar mi {svc}"
    return Episode(renewal.renewed_at - timedelta(minutes=30), lines, closes=True, essential=True)


def _expiry_episode(w: World, person: Person, sub: Subscription, agent: User) -> Episode | None:
    """A subscription near or past its expiry, not renewed (yet)."""
    rng, name = w.rng, person.customer.name
    day = sub.expires_on - timedelta(days=3)
    if day < w.today - timedelta(days=HISTORY_DAYS - 1) or _at(day, 9) > w.now:
        return None
    start, reminder = _reminder_line(
        w, day, _expiry_body(w, name, sub), sub=sub, expiry=sub.expires_on
    )
    lines, closes = [reminder], False
    if sub.expires_on >= w.today:
        reply = _pick(rng, {"renew": 4, "later": 2, "none": 4})
        if reply == "renew":
            lines += _lines(
                rng,
                agent,
                [
                    _customer("Gracias, quiero renovar", 300, 10800),
                    _bot(RENEW_ACK),
                    _customer("¿Cuánto cuesta?", 30, 600),
                    _agent(
                        f"Son ${sub.price}, te envío el link de pago: "
                        f"{PAY_LINK}{rng.getrandbits(24):06X}",
                        120,
                        1500,
                    ),
                ],
            )
        elif reply == "later":
            lines += _lines(
                rng,
                agent,
                [
                    _customer(
                        rng.choice(
                            (
                                "Ok gracias, en la tarde pago",
                                "Sí, el viernes pago 👍",
                                "Ya mismo les transfiero",
                            )
                        )
                    ),
                ],
            )
        return Episode(start, lines)
    if rng.random() < 0.35:
        lines += _lines(
            rng,
            agent,
            [
                _customer(
                    rng.choice(
                        (
                            "Este mes no voy a renovar, gracias",
                            "Por ahora no, ando corto de plata 😅",
                            "Ya no lo uso mucho, lo dejo ahí",
                        )
                    ),
                    600,
                    20000,
                ),
                _agent(
                    "Entendido 😊 Cuando quieras volver nos escribes y te lo activamos.", 120, 2400
                ),
            ],
        )
        closes = True
    elif rng.random() < 0.5:
        body = _render(
            BODIES["Recordatorio de pago"],
            nombre=_first(name),
            servicio=sub.service.name,
            precio=sub.price,
            fecha_limite=_es_date(sub.expires_on + timedelta(days=5)),
        )
        gap = int((_at(sub.expires_on + timedelta(days=1), 10) - start).total_seconds())
        lines.append(
            Line(Author.REMINDER, body, gap, tag=("reminder", RULE_AFTER, sub, sub.expires_on))
        )
    return Episode(start, lines, closes=closes)


def _support_episode(w: World, person: Person, sub: Subscription | None, agent: User) -> list:
    rng, name = w.rng, _first(person.customer.name)
    svc = sub.service.name if sub else rng.choice(("Netflix", "Disney+"))
    kind = _pick(rng, {"loading": 5, "password": 4, "price": 4, "pay": 3, "screens": 2, "phone": 2})
    if kind == "loading":
        short = {"Disney+": "Disney", "HBO Max": "HBO", "Prime Video": "Prime"}.get(svc, svc)
        ack = _render(BODIES["Soporte"], nombre=name, tema=f"{svc} que no carga")
        return [
            _customer(
                rng.choice(
                    (
                        f"Buenas, no me carga {short} 😩",
                        f"Hola, {short} no me carga desde ayer, sale error",
                        f"no me carga {short}",
                    )
                )
            ),
            *([_bot(ack)] if rng.random() < 0.5 else []),
            _agent(f"Hola {name}, ¿en qué dispositivo te pasa? ¿Tele o celular?"),
            _customer(
                rng.choice(
                    (
                        "En la tele del cuarto, un Smart TV Samsung",
                        "En el celular",
                        "En el TV box de la sala",
                    )
                )
            ),
            _agent(
                "Prueba cerrando sesión y entrando de nuevo. Si sigue igual, te cambio de perfil 🙏"
            ),
            _customer(rng.choice(("Ya funciona, gracias!!", "Listo, ya cargó 🙌", "Ya, gracias"))),
            _agent("¡Con gusto! Cualquier cosa nos escribes 😊", 30, 300),
        ]
    if kind == "password":
        return [
            _customer(
                rng.choice(
                    (
                        f"Hola, ¿me pasan la clave de {svc}? Cambié de celular",
                        "¿me pasan la clave?",
                        f"Buenas, se me cerró {svc} y no recuerdo la clave",
                    )
                )
            ),
            _agent(f"Claro {name} 🔐 Te la envío por aquí en un momento."),
            _agent(
                f"Correo: {svc.split()[0].lower()}{rng.randint(10, 99)}@cuentas.example · "
                f"Clave: {rng.choice(('Sol', 'Mar', 'Luna', 'Rio'))}{rng.randint(1000, 9999)} "
                f"· Perfil {rng.randint(1, 5)}. Por favor no la cambies 🙏",
                20,
                120,
            ),
            _customer("Gracias 👍", 60, 900),
        ]
    if kind == "price":
        other = rng.choice([s for s, _p, _w in SERVICES if s != svc])
        price = w.services[other].normal_price
        return [
            _customer(
                rng.choice(
                    (
                        f"¿Cuánto cuesta {other}?",
                        f"Hola, ¿tienen {other}? ¿precio?",
                        f"Buenas, info de {other} porfa",
                    )
                )
            ),
            _agent(
                f"Hola {name} 😊 {other} está en ${price} al mes, perfil propio. ¿Te lo activo?"
            ),
            _customer(rng.choice(("Déjame pensarlo y te aviso", "Sí, dale", "Ok, en quincena"))),
        ]
    if kind == "pay":
        return [
            _customer(
                rng.choice(
                    (
                        "¿Puedo pagar por Deuna?",
                        "¿Aceptan transferencia del Guayaquil?",
                        "¿Puedo pagar en efectivo?",
                    )
                )
            ),
            _agent(
                "Sí 👍 Aceptamos transferencia (Pichincha, Guayaquil, Produbanco), Deuna y "
                "link de pago con tarjeta."
            ),
            _customer("Perfecto, gracias"),
            _agent("A la orden 😊", 20, 300),
        ]
    if kind == "screens":
        return [
            _customer(f"¿Puedo ver {svc} en dos teles al mismo tiempo?"),
            _agent(
                f"Tu plan es de una pantalla, {name}. Si quieres dos, te paso a plan familiar "
                f"por ${w.services[svc].normal_price + Decimal('4.00')} 😊"
            ),
        ]
    return [
        (Author.PHONE, f"Buenas {name}, ya quedó activo tu {svc} 👍", 0, 0),
        _customer(rng.choice(("Gracias!!", "Excelente, muchas gracias 🙏", "👍"))),
    ]


def _support_closes(steps: list) -> bool:
    return steps[-1][0] == Author.AGENT and steps[-1][1].startswith(("¡Con gusto", "A la orden"))


def _random_episode(w: World, person: Person, agent: User, day: date) -> Episode:
    rng = w.rng
    sub = rng.choice(person.subs) if person.subs else None
    steps = _support_episode(w, person, sub, agent)
    start = _believable_time(rng, day)
    if day == w.today and start > w.now:
        start = w.now - timedelta(minutes=rng.randint(5, 240))
    lines = _lines(rng, agent, steps)
    if start.astimezone(GYE).hour >= 21 and lines[0].author == Author.CUSTOMER:
        rest = [line for line in lines[1:] if line.author != Author.BOT]
        lines = [lines[0], Line(Author.BOT, AFTER_HOURS, 3), *rest]
        opening = _at(start.astimezone(GYE).date() + timedelta(days=1), 8) + timedelta(
            minutes=rng.randint(5, 90)
        )
        lines[2].gap = int((opening - start).total_seconds()) - 3
    return Episode(start, lines, closes=_support_closes(steps))


def _urgent_episode(w: World, person: Person, sub: Subscription) -> Episode:
    rng, svc = w.rng, sub.service.name
    lines = _lines(
        rng,
        None,
        [
            _customer(
                f"URGENTE no puedo entrar a mi {svc}, me dice que la contraseña es incorrecta 😡"
            ),
            _bot("Marcamos tu caso como urgente 🚨 Un agente te atiende enseguida."),
            _customer(
                rng.choice(("Es para hoy porfa, tengo visitas", "Ayuda porfa", "???")), 60, 400
            ),
        ],
    )
    start = w.now - timedelta(minutes=rng.randint(8, 50))
    return Episode(start, lines, urgent=True, essential=True)


def promo_bodies(w: World, day: date) -> dict[str, str]:
    """The Disney+ promotion's two variants, {nombre} left for each customer (the campaign's
    own text: _business gives it to the campaign)."""
    values = {
        "servicio": "Disney+",
        "descuento": 50,
        "precio_descuento": "4.50",
        "precio_normal": w.services["Disney+"].normal_price,
        "fecha_limite": _es_date(day + timedelta(days=7)),
    }
    short = (
        "🎬 {nombre}, Disney+ a mitad de precio: ${precio_descuento} (antes ${precio_normal}) "
        'hasta el {fecha_limite}. Responde "SÍ" y te lo activamos hoy.'
    )
    return {
        "A": _render(BODIES["Promoción"], **values),
        "B": _render(short, **values),
    }


def news_body(w: World) -> str:
    return _render(
        BODIES["Nuevo servicio"],
        nuevo_servicio="Paramount+",
        caracteristicas="Películas de estreno, series de Paramount y Nickelodeon para los niños",
        precio=w.services["Paramount+"].normal_price,
    )


RETARGET_BODY = (
    "👀 {nombre}, ¿viste nuestra oferta? Disney+ a mitad de precio solo hasta el domingo. "
    'Responde "SÍ" y te lo activamos.'
)
# How customers answered the promotion, per variant: the short one (B) gets more "SÍ".
PROMO_REPLIES = {
    "A": {"none": 78, "yes": 10, "stop": 3, "ask": 9},
    "B": {"none": 66, "yes": 22, "stop": 3, "ask": 9},
}


def _campaigns(w: World, convo: list[Person], agents: dict[int, User]) -> dict[int, list]:
    """The month's campaigns as the customers lived them: a Disney+ promotion in two
    variants (and, two days later, a follow-up to those it reached who did not answer), and the
    arrival of Paramount+. _business records them as campaigns with these recipients."""
    rng, out = w.rng, {}
    promo_day = w.today - timedelta(days=12)
    promo = promo_bodies(w, promo_day)
    news_day = w.today - timedelta(days=4)
    news = news_body(w)
    for key, day, hour, share in (("promo", promo_day, 10, 0.45), ("news", news_day, 19, 0.35)):
        start = _at(day, hour)
        # Every campaign's funnel shows each step: one renewal and two failed sends at least.
        quota = {"renewal": 1, "failed": 2}
        for n, person in enumerate(p for p in convo if rng.random() < share):
            c = person.customer
            if c.opted_out or c.created_at > start or id(person) in w.stopped:
                continue
            at = start + timedelta(seconds=n * 4 + rng.randint(0, 3))
            variant = rng.choice("AB") if key == "promo" else ""
            body = promo[variant] if key == "promo" else news
            line = Line(
                Author.CAMPAIGN,
                _render(body, nombre=_first(c.name)),
                tag=("campaign", key, variant),
            )
            replies = PROMO_REPLIES[variant] if key == "promo" else PROMO_REPLIES["A"]
            if quota["renewal"] and _early_renewable(w, person):
                quota["renewal"], replies = 0, {"yes": 1}
            episode = _campaign_reply(w, person, line, at, agents[id(person)], replies)
            silent = len(episode.lines) == 1
            if silent and quota["failed"] and not person.fixed:
                quota["failed"] -= 1
                line.fails = True
            elif key == "promo" and silent and rng.random() < 0.7:
                _retarget_add(w, person, episode, _at(day + timedelta(days=2), 10), n)
            episode.essential = episode.essential or replies == {"yes": 1} or line.fails
            out.setdefault(id(person), []).append(episode)
    return out


def _early_renewable(w: World, person: Person) -> list[Subscription]:
    """Subscriptions an offer may renew early: not near their expiry (no reminder pending)."""
    if person.customer.phone == MARIA:
        return []
    return [s for s in person.subs if s.expires_on > w.today + timedelta(days=3)]


def _retarget_add(w: World, person: Person, episode: Episode, when: datetime, n: int) -> None:
    """The follow-up "to those who did not reply", in the same episode (after the silence)."""
    rng = w.rng
    episode.lines[0].reach = True
    follow = Line(
        Author.CAMPAIGN,
        _render(RETARGET_BODY, nombre=_first(person.customer.name)),
        tag=("campaign", "retarget", ""),
    )
    sent = when + timedelta(seconds=n * 4 + rng.randint(0, 3))
    follow.gap = int((sent - episode.start).total_seconds())
    episode.lines.append(follow)
    if rng.random() < 0.18:
        episode.lines += _lines(
            rng,
            None,
            [
                _customer(rng.choice(("SÍ", "Sí, me interesa", "si porfa")), 300, 9000),
                _bot(
                    f"¡Genial {_first(person.customer.name)}! 🎉 Reservamos tu oferta. "
                    "Un agente te envía el link de pago."
                ),
            ],
        )


def _early_renewal(w: World, person: Person, sub: Subscription, mark_line: Line) -> None:
    """Who took the offer renews early: the renewal is recorded when the agent confirms the
    payment, and the subscription runs 30 days longer."""
    previous = sub.expires_on

    def renewed(t: datetime) -> None:
        sub.expires_on = previous + timedelta(days=30)
        person.renewals.append(
            Renewal(
                subscription=sub,
                renewed_at=t,
                previous_expiry=previous,
                new_expiry=sub.expires_on,
                amount=sub.price,
            )
        )

    mark_line.mark = renewed


def _campaign_reply(
    w: World, person: Person, line: Line, at: datetime, agent: User, replies: dict
) -> Episode:
    rng, name = w.rng, _first(person.customer.name)
    reply = _pick(rng, replies)
    if reply == "yes":
        steps = [
            _customer(rng.choice(("SÍ", "Sí", "si quiero")), 120, 7200),
            _bot(f"¡Genial {name}! 🎉 Reservamos tu oferta. Un agente te envía el link de pago."),
            _agent(f"Hola {name}, aquí tienes el link: {PAY_LINK}{rng.getrandbits(24):06X} 😊"),
        ]
        lines = [line, *_lines(rng, agent, steps)]
        later = _early_renewable(w, person)
        if later and (replies == {"yes": 1} or rng.random() < 0.75):
            sub = later[0]
            confirm = _payment_confirm(
                w, person.customer.name, sub, sub.expires_on + timedelta(days=30)
            )
            lines += _lines(
                rng, agent, [_customer("Listo, ya pagué ✅", 300, 3600), _agent(confirm, 120, 1200)]
            )
            _early_renewal(w, person, sub, lines[-1])
            return Episode(at, lines, closes=True)
        return Episode(at, lines)
    if reply == "stop":
        steps = [
            _customer(rng.choice(("BAJA", "No más mensajes porfa", "STOP")), 300, 7200),
            _bot("Listo, ya no te enviaremos promociones. Si cambias de opinión escribe ALTA."),
        ]
        lines = [line, *_lines(rng, agent, steps)]
        w.stopped.add(id(person))
        lines[1].mark = lambda t: _opt_out(person.customer, t, lines[1].body)
        return Episode(at, lines, closes=True)
    if reply == "ask":
        steps = [
            _customer("¿Esto es solo para cuentas nuevas o también para la mía?", 300, 7200),
            _agent(f"También para la tuya, {name} 😊 Se aplica en tu próxima renovación."),
            _customer("Ah ok, gracias"),
            _agent("A la orden 😊", 20, 300),
        ]
        return Episode(at, [line, *_lines(rng, agent, steps)], closes=True)
    return Episode(at, [line])


def _opt_out(customer: Customer, at: datetime, said: str) -> None:
    customer.marketing_opt_out_at = at
    customer.marketing_opt_out_reason = f'Respondió "{said}" a una promoción'


def _maria_episode(w: World, person: Person, agent: User) -> Episode:
    """The proposal's own example, word for word."""
    day = _maria_day(w)
    netflix = next(s for s in person.subs if s.service.name == "Netflix")
    w.reminders_per_day[day] += 1
    lines = [
        Line(
            Author.REMINDER,
            _expiry_body(w, person.customer.name, netflix),
            tag=("reminder", RULE_BEFORE, netflix, netflix.expires_on),
        ),
        Line(Author.CUSTOMER, "Gracias, quiero renovar", 15 * 60),
        Line(Author.BOT, RENEW_ACK, 60),
        Line(Author.CUSTOMER, "¿Cuánto cuesta?", 4 * 60),
        Line(Author.AGENT, f"Son $12.99, te envío el link de pago: {PAY_LINK}NFX1299", 300, agent),
    ]
    return Episode(_at(day, 9), lines, essential=True)


def _carlos_episode(w: World) -> Episode:
    lines = [
        Line(Author.CUSTOMER, "Hola buenas, quiero contratar HBO Max 🙏 ¿cuánto cuesta?"),
        Line(Author.CUSTOMER, "Es para toda la familia", 40),
    ]
    return Episode(w.now - timedelta(minutes=25), lines, essential=True)


def _onboarding_episode(w: World, person: Person, agent: User) -> Episode:
    rng, c = w.rng, person.customer
    sub = person.subs[0]
    steps = [
        _customer(
            rng.choice(
                (
                    f"Hola, quiero contratar {sub.service.name}",
                    f"Buenas, me pasaron este número, ¿venden {sub.service.name}?",
                )
            )
        ),
        _agent(
            f"¡Hola {_first(c.name)}! 😊 Sí, {sub.service.name} está en ${sub.price} al mes. "
            f"Te envío el link de pago: {PAY_LINK}{rng.getrandbits(24):06X}",
            60,
            600,
        ),
        _customer("Listo, ya pagué ✅", 300, 2400),
        _agent(_payment_confirm(w, c.name, sub, sub.expires_on), 60, 900),
    ]
    return Episode(c.created_at, _lines(rng, agent, steps), closes=True, essential=True)


def _episodes_plan(w: World, person: Person, agent: User, today_chat: bool) -> list[Episode]:
    rng, c = w.rng, person.customer
    if c.phone == CARLOS:
        return [_carlos_episode(w)]
    episodes = [_onboarding_episode(w, person, agent)] if person.new else []
    episodes += [_renewal_episode(w, person, r, agent) for r in person.renewals]
    for sub in person.subs:
        if not person.new and not (c.phone == MARIA and sub.service.name == "Netflix"):
            episodes.append(_expiry_episode(w, person, sub, agent))
    for _ in range(_pick(rng, {0: 3, 1: 5, 2: 2})):
        day = w.today - timedelta(days=rng.randrange(1, HISTORY_DAYS))
        episodes.append(_random_episode(w, person, agent, day))
    if today_chat:
        episodes.append(_random_episode(w, person, agent, w.today))
    if c.phone == MARIA:
        episodes.append(_maria_episode(w, person, w.users["agente"]))
    return [e for e in episodes if e is not None]


def _layout(w: World, episodes: list[Episode], not_before: datetime):
    """Place the episodes one after another; a line that would fall after `now` is not written
    yet (the conversation is still going on). Also answers when each finished episode that
    closes the matter ended (an agent marked the conversation resolved then)."""
    laid, last, cursor, closed = [], None, not_before, []
    for episode in sorted(episodes, key=lambda e: (e.start, not e.essential)):
        start = episode.start
        if start < cursor:
            if not episode.essential:
                continue
            start = cursor + timedelta(minutes=w.rng.randint(10, 60))
        t, done = start, True
        for i, line in enumerate(episode.lines):
            t = t + timedelta(seconds=line.gap) if i else t
            if t > w.now:
                done = False
                break
            laid.append((t, line))
            if line.mark:
                line.mark(t)
        if t > start or done:
            last = (episode, done)
        if episode.closes and done:
            closed.append(t)
        cursor = t
    return laid, last, closed


def _conversation_build(w: World, person: Person, episodes: list[Episode]):
    c = person.customer
    laid, last, closed = _layout(w, episodes, c.created_at)
    if not laid:
        return None, []
    conversation = Conversation(customer=c, created_at=laid[0][0])
    messages = _messages_build(w, conversation, laid)
    _conversation_state(w, conversation, messages, last)
    w.resolutions += _resolutions_build(conversation, messages, closed)
    return conversation, messages


def _resolutions_build(
    conversation: Conversation, messages: list[Message], closed: list[datetime]
) -> list[Resolution]:
    """What conversation_resolve would have written: one row each time a closing episode ended
    (the customer writing again reopened it), and one for a conversation left resolved with the
    customer unanswered (closed two days after their last message)."""
    final = messages[-1].created_at
    if conversation.status == Conversation.Status.RESOLVED and (not closed or closed[-1] < final):
        closed = [*closed, final + timedelta(days=2)]
    rows, previous = [], None
    for at in closed:
        inbound = [
            m.created_at
            for m in messages
            if m.direction == Message.Direction.IN
            and (previous is None or m.created_at > previous)
            and m.created_at <= at
        ]
        agents = [m.agent for m in messages if m.agent and m.created_at <= at]
        last_one = at == closed[-1] and conversation.status == Conversation.Status.RESOLVED
        assignee = conversation.assignee if last_one else (agents[-1] if agents else None)
        rows.append(
            Resolution(
                conversation=conversation,
                channel_id=conversation.channel_id,
                assignee=assignee,
                started_at=min(inbound, default=None),
                resolved_at=at,
            )
        )
        previous = at
    return rows


def _conversation_state(w: World, conversation: Conversation, messages: list[Message], last):
    episode, done = last
    final = messages[-1]
    conversation.last_message_at = final.created_at
    conversation.last_message_preview = final.body.replace("\n", " ")[:160]
    human = [i for i, m in enumerate(messages) if m.author_kind in (Author.AGENT, Author.PHONE)]
    waiting = [m for m in messages[(human[-1] + 1 if human else 0) :] if m.direction == "in"]
    stale = final.created_at < w.now - timedelta(days=2)
    agents = [m.agent for m in messages if m.agent]
    if agents and w.rng.random() < 0.75:
        conversation.assignee = agents[-1]
    if episode.closes and done:
        conversation.status = Conversation.Status.RESOLVED
    elif waiting and not stale:
        conversation.status = Conversation.Status.NEW
        conversation.unread_count = len(waiting)
        conversation.urgent = episode.urgent
    elif waiting:
        conversation.status = Conversation.Status.RESOLVED
    else:
        conversation.status = Conversation.Status.ANSWERED


def _messages_build(w: World, conversation: Conversation, laid: list) -> list[Message]:
    messages, next_in = [], None
    # A number that never wrote to us may not be on WhatsApp at all.
    silent = all(line.author != Author.CUSTOMER for _t, line in laid)
    reply_times = []
    for t, line in reversed(laid):
        reply_times.append(next_in)
        if line.author == Author.CUSTOMER:
            next_in = t
    reply_times.reverse()
    for (t, line), reply_at in zip(laid, reply_times, strict=True):
        message = Message(
            conversation=conversation,
            author_kind=line.author,
            agent=line.agent,
            body=line.body,
            created_at=t,
        )
        if line.author == Author.CUSTOMER:
            message.direction, message.status = Message.Direction.IN, Status.RECEIVED
            message.wa_id = _wa_id(w)
        else:
            message.direction = Message.Direction.OUT
            _delivery(w, message, reply_at, silent, reach=line.reach, fails=line.fails)
        if line.tag:
            w.tagged.append((line.tag, message))
        messages.append(message)
    return messages


def _wa_id(w: World) -> str:
    while True:
        wa_id = f"3EB0{w.rng.getrandbits(64):016X}"
        if wa_id not in w.wa_ids:
            w.wa_ids.add(wa_id)
            return wa_id


def _delivery(
    w: World, m: Message, reply_at: datetime | None, silent: bool, *, reach=False, fails=False
) -> None:
    """Walk an outbound message along sent -> delivered -> read, never past `now` nor past the
    customer's reply (who answers has read)."""
    rng, s = w.rng, timedelta(seconds=1)
    automated = m.author_kind in (Author.REMINDER, Author.CAMPAIGN)
    m.attempts = 1
    m.sending_at = m.created_at + s
    failing = rng.random() < (0.1 if automated else 0.03)
    if fails or (reply_at is None and failing and not reach):
        m.attempts, m.failure_reason = rng.choice((NO_WHATSAPP,) if silent else FAILURES)
        m.status, m.failed_at = Status.FAILED, m.sending_at + s * rng.randint(2, 600)
        m.failed_at = min(m.failed_at, w.now)
        return
    m.sent_at = m.sending_at + s * rng.randint(1, 3)
    m.wa_id = _wa_id(w)
    w.provider_msg_id += rng.randint(1, 40)
    m.provider_msg_id = w.provider_msg_id
    m.status = Status.SENT
    if reply_at is not None:
        room = max(1, int((reply_at - m.sent_at).total_seconds()))
        m.delivered_at = m.sent_at + s * rng.randint(0, max(0, room // 3))
        m.read_at = m.delivered_at + s * rng.randint(0, max(0, (room - room // 3) * 9 // 10))
        m.status = Status.READ
        return
    late = rng.random() < 0.12
    delivered = m.sent_at + s * (rng.randint(3600, 30000) if late else rng.randint(1, 240))
    if delivered > w.now:
        return
    m.delivered_at, m.status = delivered, Status.DELIVERED
    read = delivered + s * rng.randint(20, 8 * 3600)
    if read <= w.now and rng.random() < (0.7 if automated else 0.85):
        m.read_at, m.status = read, Status.READ


# --- the seed ---------------------------------------------------------------------------------


def demo_wipe() -> None:
    """Delete what the seed owns: customers (with their subscriptions, renewals, conversations,
    messages and reminders), tags, campaigns, imports and the demo clock. Services, templates,
    rules and users are upserted by name instead."""
    Campaign.objects.all().delete()
    SessionState.objects.all().delete()
    Message.objects.all().delete()
    Conversation.objects.all().delete()
    Customer.objects.all().delete()
    Tag.objects.all().delete()
    CustomerImport.objects.all().delete()
    DemoClock.objects.all().delete()


def _conversations_build(w: World):
    rng = w.rng
    fixed = w.people[: len(FIXED_CUSTOMERS)]
    others = rng.sample(w.people[len(FIXED_CUSTOMERS) :], CONVERSATION_COUNT - len(fixed))
    convo = fixed + sorted(others, key=w.people.index)
    staff = {"agente": 55, "agente2": 35, "admin": 10}
    agents = {id(p): w.users[_pick(rng, staff)] for p in convo}
    chatty = rng.sample(convo[len(fixed) :], 20)
    today_chat, urgent = {id(p) for p in chatty[:18]}, {id(p) for p in chatty[18:]}
    campaign = _campaigns(w, convo, agents)
    built = []
    for person in convo:
        episodes = _episodes_plan(w, person, agents[id(person)], id(person) in today_chat)
        episodes += campaign.get(id(person), [])
        if id(person) in urgent:
            episodes.append(_urgent_episode(w, person, person.subs[0]))
        conversation, messages = _conversation_build(w, person, episodes)
        if conversation:
            built.append((conversation, messages))
    return built


def _tag_ensure(name: str) -> Tag:
    return Tag.objects.filter(name__iexact=name).first() or Tag.objects.create(name=name)


def _save(w: World, built) -> dict[str, int]:
    customers = Customer.objects.bulk_create([p.customer for p in w.people])
    tags = {name: _tag_ensure(name) for name in TAGS}
    Through = Customer.tags.through
    Through.objects.bulk_create(
        [Through(customer=p.customer, tag=tags[name]) for p in w.people for name in p.tags]
    )
    subs = Subscription.objects.bulk_create([s for p in w.people for s in p.subs])
    renewals = Renewal.objects.bulk_create([r for p in w.people for r in p.renewals])
    conversations = Conversation.objects.bulk_create([c for c, _m in built])
    messages = Message.objects.bulk_create([m for _c, ms in built for m in ms], batch_size=500)
    Resolution.objects.bulk_create(w.resolutions)
    return {
        "customers": len(customers),
        "subscriptions": len(subs),
        "renewals": len(renewals),
        "conversations": len(conversations),
        "messages": len(messages),
    }


def demo_seed(*, seed: int = DEFAULT_SEED, now: datetime | None = None) -> dict[str, int]:
    """Write the whole demo. The caller decides whether the database may be written to."""
    now = (now or demo_now()).astimezone(GYE).replace(microsecond=0)
    with transaction.atomic():
        w = World(
            rng=random.Random(seed),
            now=now,
            today=now.date(),
            services=demo_services_ensure(),
            users=demo_users_ensure(),
        )
        demo_templates_ensure()
        _people_build(w)
        built = _conversations_build(w)
        counts = _save(w, built)
        counts.update(_business(w))
        DemoClock.objects.update_or_create(pk=1, defaults={"anchor": now})
    counts["templates"] = len(TEMPLATES)
    counts["users"] = len(DEMO_USERS)
    return counts


# --- the business: reminders, campaigns, an import ------------------------------------------------
# Phase two, over the saved history: what the history's reminders and campaign messages were is
# recorded as chatdesk records them (reminder rows, campaigns with their recipients), and the
# campaigns that are still going on are created, launched, paused and cancelled by outbound's
# own services, so every figure on the panel, the campaign pages and analytics is counted from
# rows. Times the services stamp with the clock are then set to the demo's own.

RState = CampaignRecipient.State
REMINDER_RULES = {  # as outbound/migrations/0004 makes them, for a database flushed since
    RULE_BEFORE: (-3, "Vencimiento"),
    RULE_AFTER: (1, "Recordatorio de pago"),
}


def _business(w: World) -> dict[str, int]:
    # The WhatsApp session as WaSender last reported it (this morning's reconnection).
    connected = min(_at(w.today, 7, 58), w.now - timedelta(minutes=30))
    session_state_set(session="default", status="connected", at=connected)
    reminders = _reminders_record(w)
    campaigns = _campaigns_record(w)
    imported = _import_record(w)
    return {"reminders": reminders, "campaigns": campaigns, "imported customers": imported}


def _reminder_rule(name: str) -> ReminderRule:
    days, template = REMINDER_RULES[name]
    rule = ReminderRule.objects.filter(name=name).first()
    if rule is None:
        rule = ReminderRule.objects.create(
            name=name, days_from_expiry=days, template=MessageTemplate.objects.get(name=template)
        )
    return rule


def _reminders_record(w: World) -> int:
    """Every reminder of the history as the reminder tick records it (one row per rule,
    subscription and expiry, with its message): conversion after reminders counts these."""
    rules = {name: _reminder_rule(name) for name in REMINDER_RULES}
    rows = {}
    for tag, message in w.tagged:
        if tag[0] != "reminder":
            continue
        _kind, rule, sub, expiry = tag
        rows[(rule, sub.pk, expiry)] = ReminderSent(
            rule=rules[rule],
            subscription=sub,
            expiry_date=expiry,
            outcome=ReminderSent.Outcome.SENT,
            message=message,
            created_at=message.created_at,
        )
    ReminderSent.objects.bulk_create(rows.values())
    return len(rows)


def _sent_by(w: World, key: str) -> list[Message]:
    return [m for tag, m in w.tagged if tag[0] == "campaign" and tag[1] == key]


def _recorded(campaign: Campaign, messages: list[Message], *, launched: datetime, variants=None):
    """A campaign of the history: these sends are its recipients, and it ended with them."""
    variants = variants or {}
    by_message = {m.pk: label for label, ms in variants.items() for m in ms}
    labels = {v.label: v for v in campaign.variants.all()}
    CampaignRecipient.objects.bulk_create(
        CampaignRecipient(
            campaign=campaign,
            customer_id=m.conversation.customer_id,
            variant=labels.get(by_message.get(m.pk, "")),
            state=RState.FAILED if m.status == Status.FAILED else RState.SENT,
            body=m.body,
            planned_at=launched,
            queued_at=m.created_at,
            message=m,
        )
        for m in messages
    )
    last = max((m.created_at for m in messages), default=launched)
    opted_out = Customer.objects.filter(marketing_opt_out_at__lt=launched).count()
    Campaign.objects.filter(pk=campaign.pk).update(
        state=Campaign.State.COMPLETED,
        created_at=launched - timedelta(days=1, hours=3),
        scheduled_at=launched,
        launched_at=launched,
        completed_at=last + timedelta(seconds=5),
        recipients_total=len(messages),
        opted_out_excluded=opted_out,
        fanout_next_at=None,
    )


def _history_sends(w: World, campaign: Campaign, recipients: list[CampaignRecipient]) -> None:
    """Recipients of a running or paused campaign already sent before `now`: their messages,
    walked along their statuses like the rest of the history."""
    messages = []
    for n, r in enumerate(recipients):
        at = min(max(r.planned_at, campaign.launched_at) + timedelta(seconds=n * 3 + 1), w.now)
        conversation = conversation_get_or_create(customer=r.customer)
        if conversation.last_message_at is None:
            Conversation.objects.filter(pk=conversation.pk).update(
                status=Conversation.Status.ANSWERED, created_at=at
            )
        m = Message(
            conversation=conversation,
            direction=Message.Direction.OUT,
            body=r.body,
            author_kind=Author.CAMPAIGN,
            created_at=at,
        )
        _delivery(w, m, None, silent=False)
        messages.append(m)
    Message.objects.bulk_create(messages)
    for r, m in zip(recipients, messages, strict=True):
        r.message, r.queued_at = m, m.created_at
        r.state = RState.FAILED if m.status == Status.FAILED else RState.SENT
        conversation_last_message_note(
            conversation_id=m.conversation_id,
            at=m.created_at,
            preview=m.body.replace("\n", " ")[:160],
        )
    CampaignRecipient.objects.bulk_update(recipients, ["message", "queued_at", "state"])


def _campaigns_record(w: World) -> int:
    marketer = w.users["marketing"]
    promo_day, news_day = w.today - timedelta(days=12), w.today - timedelta(days=4)
    bodies = promo_bodies(w, promo_day)
    promo_template = MessageTemplate.objects.filter(name="Promoción").first()
    promo = campaign_create(
        title="Promoción Disney+ 50% OFF",
        template=promo_template,
        body=bodies["A"],
        variants=[bodies["B"]],
        filters={"state": "active"},
        created_by=marketer,
    )
    sent = _sent_by(w, "promo")
    variants = {
        label: [m for tag, m in w.tagged if tag[:3] == ("campaign", "promo", label)]
        for label in "AB"
    }
    _recorded(promo, sent, launched=_at(promo_day, 10), variants=variants)
    follow = campaign_retarget(
        campaign=promo,
        audience=Campaign.Audience.NOT_REPLIED,
        body=RETARGET_BODY,
        created_by=marketer,
    )
    _recorded(follow, _sent_by(w, "retarget"), launched=_at(promo_day + timedelta(days=2), 10))
    news = campaign_create(
        title="Llegó Paramount+",
        template=MessageTemplate.objects.filter(name="Nuevo servicio").first(),
        body=news_body(w),
        filters={},
        created_by=marketer,
    )
    _recorded(news, _sent_by(w, "news"), launched=_at(news_day, 19))
    _running_campaign(w, marketer)
    _paused_campaign(w, marketer)
    _later_campaigns(w, marketer)
    return Campaign.objects.count()


def _launched(campaign: Campaign, at: datetime, created: datetime) -> Campaign:
    campaign_launch(campaign_id=campaign.pk, now=at)
    Campaign.objects.filter(pk=campaign.pk).update(created_at=created, scheduled_at=at)
    campaign.refresh_from_db()
    return campaign


def _running_campaign(w: World, marketer: User) -> None:
    """The expiry notices of the week to those nobody has written to in two days (the others
    had a reminder or a chat), each at the customer's best hour: launched two hours ago, those
    whose hour has come are sent, the current hour's go out when chatdesk runs (the simulator
    counts them), the others wait for their hour."""
    template = MessageTemplate.objects.filter(name="Vencimiento").first()
    campaign = campaign_create(
        title="Notificaciones vencimiento",
        kind=Campaign.Kind.NOTIFICATION,
        template=template,
        filters={"expiring_days": 7, "contact": "older", "contact_days": 2},
        best_hour=True,
        created_by=marketer,
    )
    launched = w.now - timedelta(hours=2)
    campaign = _launched(campaign, launched, launched - timedelta(minutes=20))
    pending = list(
        CampaignRecipient.objects.filter(campaign=campaign, state=RState.PENDING)
        .select_related("customer")
        .order_by("planned_at", "pk")
    )
    # Those planned before this hour went out; this hour's wait for chatdesk's worker.
    this_hour = w.now.replace(minute=0, second=0, microsecond=0)
    _history_sends(w, campaign, [r for r in pending if r.planned_at < this_hour])


def _paused_campaign(w: World, marketer: User) -> None:
    """Black Friday: launched last night at 19:00, paused twenty minutes in."""
    campaign = campaign_create(
        title="Descuentos Black Friday",
        kind=Campaign.Kind.EVENT,
        body="🛍️ ¡{nombre}, llegó el Black Friday! {descuento}% de descuento en todos los "
        'servicios hasta el domingo. Responde "SÍ" y te guardamos el precio.',
        extra={"descuento": "30"},
        filters={"state": "active"},
        created_by=marketer,
    )
    launched = _at(w.today - timedelta(days=1), 19)
    campaign = _launched(campaign, launched, launched - timedelta(hours=5))
    recipients = list(
        CampaignRecipient.objects.filter(campaign=campaign, state=RState.PENDING)
        .select_related("customer")
        .order_by("pk")
    )
    _history_sends(w, campaign, recipients[: len(recipients) * 2 // 5])
    campaign_pause(campaign=campaign)
    Campaign.objects.filter(pk=campaign.pk).update(paused_at=launched + timedelta(minutes=20))


def _later_campaigns(w: World, marketer: User) -> None:
    """One scheduled for tomorrow, a draft, and one cancelled before it went out."""
    netflix = w.services["Netflix"]
    tomorrow = _at(w.today + timedelta(days=1), 10)
    scheduled = campaign_create(
        title="Promoción Netflix",
        body="🎬 ¡Hola {nombre}! Este fin de semana Netflix con {descuento}% de descuento. "
        'Responde "SÍ" y te lo activamos.',
        extra={"descuento": "20"},
        filters={"services": [netflix.pk]},
        scheduled_at=tomorrow,
        created_by=marketer,
    )
    draft = campaign_create(
        title="Día de la Madre",
        kind=Campaign.Kind.EVENT,
        body="💐 {nombre}, este Día de la Madre regala una cuenta familiar con "
        "{descuento}% de descuento.",
        extra={"descuento": "25"},
        filters={"state": "active"},
        created_by=marketer,
    )
    cancelled = campaign_create(
        title="Prueba HBO Max",
        body="Hola {nombre}, prueba HBO Max una semana gratis.",
        filters={"state": "expired"},
        scheduled_at=w.now + timedelta(days=2),
        created_by=marketer,
    )
    campaign_cancel(campaign=cancelled)
    stamps = {
        scheduled.pk: {"created_at": w.now - timedelta(hours=3)},
        draft.pk: {"created_at": w.now - timedelta(days=2, hours=4)},
        cancelled.pk: {
            "created_at": w.now - timedelta(days=6),
            "scheduled_at": w.now - timedelta(days=3),
            "cancelled_at": w.now - timedelta(days=5),
        },
    }
    for pk, values in stamps.items():
        Campaign.objects.filter(pk=pk).update(**values)


def _import_record(w: World) -> int:
    """A CSV from a fair in Quito, imported by the marketer five days ago through the importer:
    new customers, two already known (a tag added), two lines rejected with their reason."""
    taken = set(Customer.objects.values_list("phone", flat=True))
    day = w.today - timedelta(days=5)
    rows = ["nombre;telefono;ciudad;provincia;etiquetas;servicio;precio;inicio;vence"]
    for _ in range(6):
        phone = _phone_new(w.rng, taken)
        service = _pick(w.rng, {name: weight for name, _p, weight in SERVICES})
        rows.append(
            f"{_name_new(w.rng)};{phone};Quito;Pichincha;Feria Quito;{service};"
            f"{w.services[service].normal_price};{day};{day + timedelta(days=30)}"
        )
    known = Customer.objects.order_by("pk").exclude(phone__in=(MARIA, CARLOS))[5:7]
    rows += [f"{c.name};{c.phone};;;Feria Quito;;;;" for c in known]
    rows.append(f"{_name_new(w.rng)};09912345;Quito;Pichincha;;Netflix;12.99;{day};")
    rows.append(f"{_name_new(w.rng)};{_phone_new(w.rng, taken)};Quito;Pichincha;;Star+;7.99;;")
    at = _at(day, 16, 40)
    before = set(Customer.objects.values_list("pk", flat=True))
    report = customer_import(text="\n".join(rows) + "\n")
    customer_import_record(
        report=report, filename="feria-quito.csv", user=w.users["marketing"], at=at
    )
    new = Customer.objects.exclude(pk__in=before)
    Subscription.objects.filter(customer__in=new).update(created_at=at)
    return new.update(created_at=at)


# --- coming back another day ----------------------------------------------------------------------
# Apps whose dates belong to the demo's story (users, sessions and login attempts do not).
STORY_APPS = ("customers", "inbox", "outbound", "chatdesk")


def demo_refresh(*, now: datetime | None = None) -> int:
    """On a demo database (one with a DemoClock), move every date of the story forward by the
    whole days since its last activity, so today's figures are today's when the demo is started
    again; nothing is deleted or rewritten otherwise. Returns the days moved (0: nothing to do,
    or not a demo database)."""
    clock = DemoClock.objects.first()
    if clock is None:
        return 0
    now = now or timezone.now()
    latest = Message.objects.aggregate(latest=Max("created_at"))["latest"]
    since = max(clock.anchor, latest) if latest else clock.anchor
    days = (now - since) // timedelta(days=1)
    if days < 1:
        return 0
    delta = timedelta(days=days)
    with transaction.atomic():
        for label in STORY_APPS:
            for model in apps.get_app_config(label).get_models():
                _story_shift(model, delta)
    _insights_cache_forget()
    return days


def _story_shift(model, delta: timedelta) -> None:
    fields = [f for f in model._meta.concrete_fields if not getattr(f, "auto_now", False)]
    moments = [f.name for f in fields if isinstance(f, DateTimeField)]
    days = [f.name for f in fields if isinstance(f, DateField) and not isinstance(f, DateTimeField)]
    if moments:
        model.objects.update(**{name: F(name) + delta for name in moments})
    for name in days:
        # One row at a time, latest first: a unique constraint over a date (one reminder per
        # expiry) never meets a row that has not moved yet.
        for pk, value in model.objects.order_by(f"-{name}").values_list("pk", name):
            if value is not None:
                model.objects.filter(pk=pk).update(**{name: value + delta})


def _insights_cache_forget() -> None:
    """Figures of settled days are cached by date: after the story moved they describe other
    days. Only insights' keys go (the same Redis holds the broker's queues)."""
    from django.core.cache import cache

    client = getattr(cache, "_cache", None)
    if hasattr(client, "get_client"):
        redis_client = client.get_client(write=True)
        for key in redis_client.scan_iter(match=cache.make_key("insights:*")):
            redis_client.delete(key)
    else:
        cache.clear()

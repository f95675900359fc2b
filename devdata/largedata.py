"""A large, realistic, deterministic data set for benchmarks (`manage.py generate_large_data`).

Test data for an empty (benchmark) database, never for production. Everything comes from one
`random.Random(seed)` and one `now` anchor.

Shape: customers with one or two subscriptions renewed month after month; before each expiry
a reminder (3 days before, 09:00) from one ReminderRule, each with its ReminderSent row; a few
dozen campaigns a year at fixed hours to a share of the customers who have not opted out, as
Campaign rows (some with an A/B variant) and one CampaignRecipient per message; spontaneous
support chats answered by the demo agents, their conversations assigned to whoever answered
last (resolved ones to an agent in any case, with one Resolution row each). Each customer has
a reply habit (fast / slow / never), so replies, read times and renewals after a reminder
follow it. Outbound messages walk sent -> delivered -> read (some straight to read with no
delivered_at, some failed with a reason); nothing is dated after `now`.

Customers are processed in chunks: their conversations are bulk-created (ids come back), then
their messages are written with COPY on PostgreSQL (ids drawn from the sequence first, so the
recipients and reminder rows can point at them) or bulk_create elsewhere.
"""

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from customers.models import Customer, Renewal, Subscription
from devdata.demo import (
    CITIES,
    FAILURES,
    FEMALE_NAMES,
    GYE,
    HOURS,
    MALE_NAMES,
    NO_WHATSAPP,
    SERVICES,
    SURNAMES,
    demo_services_ensure,
    demo_users_ensure,
)
from inbox.models import DEFAULT_CHANNEL, Channel, Conversation, Message, Resolution
from outbound.models import (
    Campaign,
    CampaignRecipient,
    CampaignVariant,
    MessageTemplate,
    ReminderRule,
    ReminderSent,
)

CHUNK = 1000
REMINDER_DAYS = 3
S = timedelta(seconds=1)

REMINDER = (
    "Hola {n} 👋 Tu {s} vence el {d}. Renueva por ${p} y sigue disfrutando sin cortes.\n"
    '¿Deseas renovar? Responde "SÍ".'
)
REMINDER_RULE = "Vence en 3 días (datos de prueba)"
CAMPAIGN_BODIES = (
    "🎬 ¡Hola {n}! OFERTA ESPECIAL: {s} con 30% de descuento. Responde SÍ para activar.",
    "🆕 {n}, ya tenemos {s}. Series y películas de estreno. ¿Te interesa? Responde SÍ.",
    "🎁 {n}, combo del mes: {s} + Spotify a precio especial. Escríbenos para activarlo.",
)
REPLIES = (
    "SÍ",
    "Sí, quiero renovar",
    "ok gracias",
    "¿Cuánto cuesta?",
    "Ya pagué 👍",
    "Mañana pago",
    "Ya no gracias",
    "Listo, envío comprobante",
)
SUPPORT_OPENERS = (
    "No me carga la cuenta",
    "Hola, ¿tienen Disney+?",
    "Me sale error de PIN",
    "¿Hasta cuándo tengo mi cuenta?",
    "Buenas, quiero contratar Netflix",
)
AGENT_LINES = (
    "Hola {n}, ya te ayudo 😊",
    "Listo {n}, quedó resuelto.",
    "A la orden 😊",
    "Te envío el link de pago.",
)
BOT_ACK = "Perfecto, te ayudo con la renovación 🙌 Un agente te escribe en unos minutos."

# Reply habit: (share of customers, chance to reply, delay range in seconds)
HABITS = {
    "fast": (0.35, 0.55, (30, 50 * 60)),
    "slow": (0.40, 0.35, (70 * 60, 20 * 3600)),
    "never": (0.25, 0.0, (0, 0)),
}


@dataclass
class Plan:
    customers: int
    messages: int
    days: int
    seed: int
    now: datetime
    # WhatsApp numbers: the default one, then "soporte" (a Cloud API number), ... Customers
    # are spread over them by index (every n-th on the second), no random draw spent.
    channels: int = 1


def _weighted(rng, pairs):
    return rng.choices([p[0] for p in pairs], weights=[p[-1] for p in pairs])[0]


def _hour(rng) -> int:
    return rng.choices(list(HOURS), weights=list(HOURS.values()))[0]


def _at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second), tzinfo=GYE)


def campaign_has_b(index: int) -> bool:
    """Every third campaign is an A/B test: customers with an odd last digit get variant B."""
    return index % 3 == 1


def variant_b(body: str) -> str:
    return CAMPAIGN_BODIES[(CAMPAIGN_BODIES.index(body) + 1) % len(CAMPAIGN_BODIES)]


class Generator:
    def __init__(self, plan: Plan, *, out=None):
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.now = plan.now.astimezone(GYE).replace(microsecond=0)
        self.today = self.now.date()
        self.start = self.today - timedelta(days=plan.days)
        self.out = out or (lambda text: None)
        self.wa = 0
        self.provider = 0
        self.counts = dict.fromkeys(("customers", "subscriptions", "renewals", "messages"), 0)
        # Tuned after a pilot so the total lands near plan.messages.
        self.rate = 1.0

    # --- the year's campaigns ---------------------------------------------------------------

    def campaigns_plan(self) -> list[tuple[datetime, str, str, float]]:
        rng, out = self.rng, []
        names = [s[0] for s in SERVICES]
        day = self.start + timedelta(days=rng.randint(1, 6))
        while day < self.today:
            hour = rng.choice((10, 12, 18, 19, 20))
            body = rng.choice(CAMPAIGN_BODIES)
            out.append((_at(day, hour), body, rng.choice(names), rng.uniform(0.15, 0.45)))
            day += timedelta(days=rng.randint(5, 12))
        return out

    # --- one customer -------------------------------------------------------------------------

    def customer_new(self, i: int) -> tuple[Customer, str]:
        rng = self.rng
        first = rng.choice(FEMALE_NAMES if rng.random() < 0.5 else MALE_NAMES)
        city, province = _weighted(rng, [((c, p), w) for c, p, w in CITIES])
        created = _at(self.start - timedelta(days=rng.randint(0, 400)), _hour(rng))
        habit = _weighted(rng, [(k, v[0]) for k, v in HABITS.items()])
        customer = Customer(
            name=f"{first} {rng.choice(SURNAMES)} {rng.choice(SURNAMES)}",
            phone=f"+5939{80000000 + i:08d}",
            city=city,
            province=province,
            created_at=created,
        )
        return customer, habit

    def messages_for(self, c: Customer, habit: str, subs, campaigns) -> list[dict]:
        """The customer's whole year as message dicts, oldest first; subscriptions extended
        and renewals appended as a side effect."""
        rng, msgs = self.rng, []
        first = c.name.split()[0]
        chance, (lo, hi) = HABITS[habit][1], HABITS[habit][2]

        def reply_after(at: datetime, *, boost: float = 1.0):
            if rng.random() < min(1.0, chance * boost):
                return at + S * rng.randint(lo, hi)
            return None

        for sub, renewals in subs:
            expiry = sub.started_on + timedelta(days=30)
            while expiry - timedelta(days=REMINDER_DAYS) <= self.today:
                remind_day = expiry - timedelta(days=REMINDER_DAYS)
                if remind_day >= self.start and rng.random() < self.rate:
                    at = _at(remind_day, 9, rng.randint(0, 59), rng.randint(0, 59))
                    text = REMINDER.format(n=first, s=sub.service.name, d=expiry, p=sub.price)
                    replied = self.exchange(
                        msgs,
                        at,
                        Message.Author.REMINDER,
                        text,
                        reply_after(at, boost=1.2),
                        tag={"_reminder": (sub, expiry)},
                    )
                    read = bool(msgs) and msgs[-1].get("_reminder") and msgs[-1].get("read_at")
                    renews = 0.92 if replied else (0.85 if read else 0.6)
                else:
                    renews = 0.75
                if rng.random() >= renews:
                    break  # the subscription lapses here
                renewed = _at(
                    expiry - timedelta(days=rng.randint(0, 3)), _hour(rng), rng.randint(0, 59)
                )
                if renewed > self.now:
                    break
                if renewed >= _at(self.start, 0):
                    renewals.append(
                        Renewal(
                            renewed_at=renewed,
                            previous_expiry=expiry,
                            new_expiry=expiry + timedelta(days=30),
                            amount=sub.price,
                        )
                    )
                expiry += timedelta(days=30)
            sub.expires_on = expiry
        opted_out = c.marketing_opt_out_at
        for index, (at, body, service, share) in enumerate(campaigns):
            if opted_out and opted_out <= at:
                continue
            if rng.random() >= share * self.rate:
                continue
            at = at + S * rng.randint(0, 1800)
            reply = reply_after(at, boost=0.4)
            label = "B" if campaign_has_b(index) and int(c.phone[-1]) % 2 else "A"
            if label == "B":
                body = variant_b(body)
            self.exchange(
                msgs,
                at,
                Message.Author.CAMPAIGN,
                body.format(n=first, s=service),
                reply,
                tag={"_campaign": (index, label)},
            )
            if reply and rng.random() < 0.03:
                c.marketing_opt_out_at = opted_out = reply + S * 5
                c.marketing_opt_out_reason = 'Respondió "BAJA" a una promoción'
        for _ in range(self._poisson(2.5 * self.rate)):
            day = self.start + timedelta(days=rng.randint(0, self.plan.days))
            at = _at(day, _hour(rng), rng.randint(0, 59), rng.randint(0, 59))
            if at > self.now:
                continue
            self.support_chat(msgs, at, first)
        msgs.sort(key=lambda m: m["created_at"])
        return msgs

    def _poisson(self, lam: float) -> int:
        n, p, limit = 0, 1.0, 2.718281828**-lam
        while True:
            p *= self.rng.random()
            if p < limit:
                return n
            n += 1

    def exchange(self, msgs, at, author, text, reply_at, *, tag=None) -> bool:
        """One automated message and perhaps the customer's answer (and ours). `tag` keys
        (underscored) say which reminder or campaign sent it; they are not columns."""
        if at > self.now:
            return False
        out = self.outbound(at, author, text, reply_at)
        out.update(tag or {})
        msgs.append(out)
        if reply_at is None or out["status"] == Message.Status.FAILED or reply_at > self.now:
            return False
        msgs.append(self.inbound(reply_at, self.rng.choice(REPLIES)))
        if self.rng.random() < 0.5:
            bot_at = reply_at + S * 2
            if bot_at <= self.now:
                msgs.append(self.outbound(bot_at, Message.Author.BOT, BOT_ACK, None))
        return True

    def support_chat(self, msgs, at, first) -> None:
        rng = self.rng
        msgs.append({**self.inbound(at, rng.choice(SUPPORT_OPENERS)), "_opens": True})
        for _ in range(rng.randint(1, 3)):
            at += S * rng.randint(60, 3 * 3600)
            if at > self.now:
                return
            text = rng.choice(AGENT_LINES).format(n=first)
            reply = at + S * rng.randint(30, 1800) if rng.random() < 0.6 else None
            msgs.append(self.outbound(at, Message.Author.AGENT, text, reply))
            if reply is None or reply > self.now:
                return
            msgs.append(self.inbound(reply, rng.choice(REPLIES)))
            at = reply

    def inbound(self, at, text) -> dict:
        self.wa += 1
        return {
            "direction": "in",
            "author_kind": "customer",
            "body": text,
            "created_at": at,
            "status": "received",
            "wa_id": f"LG{self.plan.seed:X}I{self.wa:010d}",
        }

    def outbound(self, at, author, text, reply_at) -> dict:
        """Along sent -> delivered -> read, never past `now` nor past the reply."""
        rng = self.rng
        m = {
            "direction": "out",
            "author_kind": author,
            "body": text,
            "created_at": at,
            "sending_at": at + S,
            "attempts": 1,
        }
        if author == Message.Author.AGENT:
            m["agent"] = rng.choice(self.agents)
        if reply_at is None and rng.random() < 0.04:
            m["attempts"], m["failure_reason"] = rng.choice((NO_WHATSAPP, *FAILURES))
            m["status"], m["failed_at"] = "failed", at + S * rng.randint(3, 600)
            return m
        self.wa += 1
        self.provider += 1
        m.update(
            status="sent",
            sent_at=at + S * rng.randint(2, 5),
            provider_msg_id=self.provider,
            wa_id=f"LG{self.plan.seed:X}O{self.wa:010d}",
        )
        if reply_at is not None:
            room = max(2, int((reply_at - m["sent_at"]).total_seconds()))
            m["read_at"] = m["sent_at"] + S * rng.randint(1, room - 1)
            m["delivered_at"] = m["sent_at"] + S * rng.randint(
                0, int((m["read_at"] - m["sent_at"]).total_seconds())
            )
            m["status"] = "read"
        else:
            delivered = m["sent_at"] + S * rng.randint(1, 600)
            if delivered <= self.now and rng.random() < 0.93:
                m["delivered_at"], m["status"] = delivered, "delivered"
                read = delivered + S * rng.randint(30, 10 * 3600)
                if read <= self.now and rng.random() < 0.6:
                    m["read_at"], m["status"] = read, "read"
        if m.get("read_at") and rng.random() < 0.03:
            m["delivered_at"] = None  # the phone reported read, never delivered
        return m

    # --- writing --------------------------------------------------------------------------------

    def run(self) -> dict:
        services = demo_services_ensure()
        users = demo_users_ensure()
        self.agents = [users["agente"].pk, users["agente2"].pk, users["admin"].pk]
        weights = [(services[name], int(w)) for name, _price, w in SERVICES]
        campaigns = self.campaigns_plan()
        self.rate = self.pilot(weights, campaigns)
        self.rng = random.Random(self.plan.seed)
        self.campaigns_plan()  # keep the draw sequence identical to the pilot's
        self.rule = self.reminder_rule_ensure()
        self.channel_keys = self.channels_ensure()
        self.campaign_rows = self.campaigns_write(campaigns, users["marketing"])
        columns = [f.column for f in Message._meta.concrete_fields]
        fields = {f.column: f for f in Message._meta.concrete_fields}
        for first in range(0, self.plan.customers, CHUNK):
            with transaction.atomic():
                self.chunk_write(
                    range(first, min(first + CHUNK, self.plan.customers)),
                    weights,
                    campaigns,
                    columns,
                    fields,
                )
            self.out(
                f"{min(first + CHUNK, self.plan.customers)} customers, "
                f"{self.counts['messages']} messages"
            )
        for campaign, _variants in self.campaign_rows:
            campaign.recipients_total = campaign.recipients.count()
            campaign.save(update_fields=["recipients_total"])
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")  # fresh statistics, or the planner guesses from none
        return self.counts

    def channels_ensure(self) -> list[str]:
        keys = [DEFAULT_CHANNEL]
        Channel.objects.get_or_create(key=DEFAULT_CHANNEL, defaults={"name": "Ventas"})
        for n in range(1, self.plan.channels):
            key = "soporte" if n == 1 else f"numero-{n + 1}"
            Channel.objects.get_or_create(
                key=key,
                defaults={
                    "name": "Soporte" if n == 1 else f"Número {n + 1}",
                    "provider": Channel.Provider.CLOUDAPI,
                    "account": f"10000000000000{n}",
                    "colour": Channel.Colour.BLUE,
                },
            )
            keys.append(key)
        return keys

    def channel_of(self, c: Customer) -> str:
        # Two in three customers on the first number, the rest over the others.
        n = len(self.channel_keys)
        index = int(c.phone[-6:])
        if n == 1 or index % 3:
            return self.channel_keys[0]
        return self.channel_keys[1 + (index // 3) % (n - 1)]

    def reminder_rule_ensure(self) -> ReminderRule:
        template, _ = MessageTemplate.objects.get_or_create(
            name="Recordatorio de vencimiento (datos de prueba)",
            defaults={"category": MessageTemplate.Category.NOTIFICATION, "body": REMINDER},
        )
        rule, _ = ReminderRule.objects.get_or_create(
            name=REMINDER_RULE,
            defaults={"days_from_expiry": -REMINDER_DAYS, "template": template},
        )
        return rule

    def campaigns_write(self, campaigns, author) -> list[tuple[Campaign, dict]]:
        """The year's campaigns (completed) and one scheduled for tomorrow, for the panel."""
        rows = []
        for index, (at, body, service, _share) in enumerate(campaigns):
            campaign = Campaign.objects.create(
                title=f"{service} {at:%d/%m}",
                body=body.format(n="{nombre}", s=service),
                state=Campaign.State.COMPLETED,
                scheduled_at=at,
                created_at=at - timedelta(days=1),
                launched_at=at,
                completed_at=at + timedelta(minutes=40),
                created_by=author,
            )
            labels = ("A", "B") if campaign_has_b(index) else ("A",)
            variants = {
                label: CampaignVariant.objects.create(
                    campaign=campaign,
                    label=label,
                    body=(body if label == "A" else variant_b(body)).format(
                        n="{nombre}", s=service
                    ),
                )
                for label in labels
            }
            rows.append((campaign, variants))
        tomorrow = _at(self.today + timedelta(days=1), 19)
        Campaign.objects.create(
            title=f"Netflix {tomorrow:%d/%m}",
            body=CAMPAIGN_BODIES[0].format(n="{nombre}", s="Netflix"),
            state=Campaign.State.SCHEDULED,
            scheduled_at=tomorrow,
            created_at=self.now,
            created_by=author,
        )
        return rows

    def pilot(self, weights, campaigns) -> float:
        """Messages a customer gets at rate 1, from a throwaway sample: the rate to reach the
        requested total."""
        sample, total = min(300, self.plan.customers), 0
        for i in range(sample):
            c, habit = self.customer_new(i)
            total += len(self.messages_for(c, habit, self.subs_new(c, weights), campaigns))
        wanted = self.plan.messages / max(1, self.plan.customers)
        return max(0.05, min(20.0, wanted / max(1.0, total / sample)))

    def subs_new(self, c: Customer, weights) -> list[tuple[Subscription, list]]:
        rng, subs, chosen = self.rng, [], set()
        for _ in range(1 if rng.random() < 0.65 else 2):
            service = _weighted(rng, weights)
            if service.pk in chosen:
                continue
            chosen.add(service.pk)
            price = (
                service.normal_price
                if rng.random() < 0.8
                else (service.normal_price * Decimal("0.8")).quantize(Decimal("0.01"))
            )
            started = self.start - timedelta(days=rng.randint(0, 29))
            if rng.random() < 0.3:  # joined during the year
                started = self.start + timedelta(days=rng.randint(0, self.plan.days - 1))
            sub = Subscription(
                customer=c,
                service=service,
                price=price,
                started_on=started,
                expires_on=started,
                created_at=_at(started, _hour(rng)),
            )
            subs.append((sub, []))
        return subs

    def chunk_write(self, indexes, weights, campaigns, columns, fields) -> None:
        people = []
        for i in indexes:
            c, habit = self.customer_new(i)
            if self.rng.random() < 0.02:
                c.marketing_opt_out_at = c.created_at + timedelta(days=1)
                c.marketing_opt_out_reason = "Pidió por llamada no recibir promociones"
            subs = self.subs_new(c, weights)
            people.append((c, subs, self.messages_for(c, habit, subs, campaigns)))
        Customer.objects.bulk_create([c for c, _s, _m in people])
        subs = [s for _c, ss, _m in people for s, _r in ss]
        for sub in subs:
            sub.customer_id = sub.customer.pk
        Subscription.objects.bulk_create(subs)
        renewals = []
        for sub, rs in (pair for _c, ss, _m in people for pair in ss):
            for r in rs:
                r.subscription_id = sub.pk
                renewals.append(r)
        Renewal.objects.bulk_create(renewals, batch_size=5000)
        talking = [(c, ms) for c, _s, ms in people if ms]
        conversations = Conversation.objects.bulk_create(
            [self.conversation(c, ms) for c, ms in talking]
        )
        rows = []
        for conv, (c, ms) in zip(conversations, talking, strict=True):
            for m in ms:
                m["conversation"], m["_customer"] = conv.pk, c.pk
                rows.append(m)
        self.messages_write(rows, columns, fields)
        self.links_write(rows)
        self.resolutions_write(conversations, [ms for _c, ms in talking])
        self.counts["customers"] += len(people)
        self.counts["subscriptions"] += len(subs)
        self.counts["renewals"] += len(renewals)
        self.counts["messages"] += len(rows)

    def links_write(self, rows: list[dict]) -> None:
        """ReminderSent and CampaignRecipient rows for the messages just written (ids known)."""
        sent, recipients = [], []
        for m in rows:
            if "_reminder" in m:
                sub, expiry = m["_reminder"]
                sent.append(
                    ReminderSent(
                        rule=self.rule,
                        subscription_id=sub.pk,
                        expiry_date=expiry,
                        outcome=ReminderSent.Outcome.SENT,
                        message_id=m["id"],
                        created_at=m["created_at"],
                    )
                )
            elif "_campaign" in m:
                index, label = m["_campaign"]
                campaign, variants = self.campaign_rows[index]
                failed = m["status"] == Message.Status.FAILED
                state = CampaignRecipient.State.FAILED if failed else CampaignRecipient.State.SENT
                recipients.append(
                    CampaignRecipient(
                        campaign=campaign,
                        customer_id=m["_customer"],
                        variant=variants[label],
                        state=state,
                        skip_reason=m.get("failure_reason", "") if failed else "",
                        body=m["body"],
                        planned_at=m["created_at"],
                        queued_at=m["created_at"],
                        message_id=m["id"],
                    )
                )
        ReminderSent.objects.bulk_create(sent, batch_size=5000)
        CampaignRecipient.objects.bulk_create(recipients, batch_size=5000)
        self.counts["reminders_sent"] = self.counts.get("reminders_sent", 0) + len(sent)
        self.counts["campaign_recipients"] = self.counts.get("campaign_recipients", 0) + len(
            recipients
        )

    def resolutions_write(self, conversations: list[Conversation], threads: list[list]) -> None:
        """One Resolution per resolved conversation, as conversation_resolve writes it: resolved
        at its last message, started at the opening of the customer's last support chat (no
        earlier resolution is modelled), else at their first message."""
        rows = []
        for conv, msgs in zip(conversations, threads, strict=True):
            if conv.status != Conversation.Status.RESOLVED:
                continue
            inbound = [m for m in msgs if m["direction"] == "in"]
            opens = [m for m in inbound if m.get("_opens")]
            start = opens[-1] if opens else (inbound[0] if inbound else None)
            rows.append(
                Resolution(
                    conversation_id=conv.pk,
                    channel_id=conv.channel_id,
                    assignee_id=conv.assignee_id,
                    started_at=start["created_at"] if start else None,
                    resolved_at=conv.last_message_at,
                )
            )
        Resolution.objects.bulk_create(rows, batch_size=5000)
        self.counts["resolutions"] = self.counts.get("resolutions", 0) + len(rows)

    def conversation(self, c: Customer, msgs: list[dict]) -> Conversation:
        last = msgs[-1]
        waiting = last["direction"] == "in" and self.now - last["created_at"] < timedelta(days=2)
        status = (
            Conversation.Status.NEW
            if waiting
            else (
                Conversation.Status.RESOLVED
                if self.rng.random() < 0.6
                else Conversation.Status.ANSWERED
            )
        )
        agents = [m["agent"] for m in msgs if m.get("agent")]
        assignee = agents[-1] if agents else None
        if assignee is None and status == Conversation.Status.RESOLVED:
            assignee = self.agents[c.pk % len(self.agents)]
        return Conversation(
            customer=c,
            channel_id=self.channel_of(c),
            status=status,
            created_at=msgs[0]["created_at"],
            assignee_id=assignee,
            last_message_at=last["created_at"],
            last_message_preview=last["body"][:160],
            unread_count=1 if waiting else 0,
        )

    def messages_write(self, rows: list[dict], columns, fields) -> None:
        names = {"conversation_id": "conversation", "agent_id": "agent", "reply_to_id": "reply_to"}
        defaults = {}
        for col in columns:
            f = fields[col]
            defaults[col] = None if f.null else f.get_default()
        defaults["created_at"] = None
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence('inbox_message', 'id')) "
                    "FROM generate_series(1, %s)",
                    [len(rows)],
                )
                for m, (pk,) in zip(rows, cursor.fetchall(), strict=True):
                    m["id"] = pk
            sql = f"COPY inbox_message ({', '.join(columns)}) FROM STDIN"
            with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
                for m in rows:
                    copy.write_row([m.get(names.get(col, col), defaults[col]) for col in columns])
            return
        objs = []
        for m in rows:
            fields_of = {k: v for k, v in m.items() if not k.startswith("_")}
            fields_of["conversation_id"] = fields_of.pop("conversation")
            if "agent" in fields_of:
                fields_of["agent_id"] = fields_of.pop("agent")
            objs.append(Message(**fields_of))
        Message.objects.bulk_create(objs, batch_size=2000)
        for m, obj in zip(rows, objs, strict=True):
            m["id"] = obj.pk


def large_data_generate(
    *,
    customers: int,
    messages: int,
    days: int,
    seed: int = 7,
    now: datetime | None = None,
    channels: int = 1,
    out=None,
) -> dict:
    now = now or timezone.now().replace(minute=0, second=0, microsecond=0)
    plan = Plan(
        customers=customers, messages=messages, days=days, seed=seed, now=now, channels=channels
    )
    return Generator(plan, out=out).run()

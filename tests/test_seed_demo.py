"""`manage.py seed_demo` and devdata.demo: deterministic, believable, safe to re-run."""

import hashlib
import re
from datetime import datetime, timedelta
from io import StringIO
from itertools import takewhile
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db.models import Count

from chatdesk.roles import has_role
from customers.models import Customer, Renewal, Subscription
from customers.phones import phone_normalize
from devdata.demo import DEMO_URL, DEMO_USERS, demo_now, demo_seed, demo_wipe
from inbox.models import Conversation, Message, Resolution
from insights.selectors import Period
from insights.selectors.agents import agent_stats_count
from outbound.models import MessageTemplate

GYE = ZoneInfo("America/Guayaquil")
ANCHOR = datetime(2025, 3, 14, 15, 0, tzinfo=GYE)
TODAY = ANCHOR.date()
IMPORTED = 6  # customers the demo's CSV import adds to the 200

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def fingerprint() -> str:
    rows = []
    for c in Customer.objects.prefetch_related("tags"):
        tags = sorted(t.name for t in c.tags.all())
        opt_out = (c.marketing_opt_out_at, c.marketing_opt_out_reason)
        rows.append(
            ("c", c.phone, c.name, c.city, c.province, c.created_at, opt_out, c.notes, tags)
        )
    for s in Subscription.objects.select_related("customer", "service"):
        rows.append(("s", s.customer.phone, s.service.name, s.price, s.started_on, s.expires_on))
    for r in Renewal.objects.select_related("subscription__customer", "subscription__service"):
        rows.append(
            (
                "r",
                r.subscription.customer.phone,
                r.subscription.service.name,
                r.renewed_at,
                r.previous_expiry,
                r.new_expiry,
                r.amount,
            )
        )
    for v in Conversation.objects.select_related("customer", "assignee"):
        rows.append(
            (
                "v",
                v.customer.phone,
                v.status,
                v.unread_count,
                v.urgent,
                v.assignee and v.assignee.username,
                v.last_message_at,
                v.last_message_preview,
                v.created_at,
            )
        )
    for m in Message.objects.select_related("conversation__customer", "agent"):
        rows.append(
            (
                "m",
                m.conversation.customer.phone,
                m.created_at,
                m.direction,
                m.author_kind,
                m.agent and m.agent.username,
                m.body,
                m.status,
                m.wa_id,
                m.provider_msg_id,
                m.sent_at,
                m.delivered_at,
                m.read_at,
                m.failed_at,
                m.failure_reason,
            )
        )
    text = "\n".join(sorted(repr(row) for row in rows))
    return hashlib.sha256(text.encode()).hexdigest()


def local_date(moment: datetime):
    return moment.astimezone(GYE).date()


def test_it_is_deterministic():
    demo_seed(seed=7, now=ANCHOR)
    first = fingerprint()
    demo_wipe()
    demo_seed(seed=7, now=ANCHOR)
    assert fingerprint() == first
    demo_wipe()
    demo_seed(seed=8, now=ANCHOR)
    assert fingerprint() != first


def test_it_creates_about_200_customers_with_valid_unique_phones():
    demo_seed(now=ANCHOR)
    customers = list(Customer.objects.all())
    phones = [c.phone for c in customers]
    assert 180 <= len(customers) <= 220
    assert len(set(phones)) == len(phones)
    assert all(re.fullmatch(r"\+5939\d{8}", p) and phone_normalize(p) == p for p in phones)
    by_phone = {c.phone: c for c in customers}
    assert by_phone["+593968196046"].name == "María González"
    assert by_phone["+593987654321"].name == "Carlos Pérez"
    assert all(c.city and c.province for c in customers)
    assert sum(len(c.name.split()) >= 3 for c in customers) >= len(customers) - 2
    opted_out = [c for c in customers if c.marketing_opt_out_at]
    assert 1 <= len(opted_out) <= 20
    assert all(c.marketing_opt_out_reason for c in opted_out)
    assert Customer.objects.filter(tags__name="VIP").exists()


def test_it_spreads_subscription_expiry_dates_around_today():
    demo_seed(now=ANCHOR)
    days_left = [(s.expires_on - TODAY).days for s in Subscription.objects.all()]
    assert any(d == 0 for d in days_left)
    assert sum(1 <= d <= 3 for d in days_left) >= 5
    assert sum(d > 3 for d in days_left) > len(days_left) / 3
    assert any(-10 <= d < 0 for d in days_left)
    assert any(d < -30 for d in days_left)
    per_customer = Customer.objects.annotate(n=Count("subscriptions")).values_list("n", flat=True)
    assert set(per_customer) == {1, 2, 3}
    recent = ANCHOR - timedelta(days=30)
    assert Renewal.objects.filter(renewed_at__gte=recent, renewed_at__lte=ANCHOR).count() >= 3
    assert Customer.objects.filter(created_at__gte=ANCHOR - timedelta(days=7)).exists()


@pytest.mark.parametrize("hour", [15, 6])
def test_it_writes_a_month_of_messages_up_to_the_anchor(hour):
    anchor = ANCHOR.replace(hour=hour)
    demo_seed(now=anchor)
    messages = list(Message.objects.all())
    assert max(m.created_at for m in messages) <= anchor
    assert min(m.created_at for m in messages) >= anchor - timedelta(days=31)
    for m in messages:
        steps = [m.sending_at, m.sent_at, m.delivered_at, m.read_at, m.failed_at]
        assert all(step <= anchor for step in steps if step)
    wa_ids = [m.wa_id for m in messages if m.wa_id]
    assert len(set(wa_ids)) == len(wa_ids)
    assert all(re.fullmatch(r"3EB0[0-9A-F]+", wa_id) for wa_id in wa_ids)


def test_it_writes_messages_of_today_in_both_directions_with_varied_states():
    demo_seed(now=ANCHOR)
    today = [m for m in Message.objects.all() if local_date(m.created_at) == TODAY]
    assert {m.direction for m in today} == {"in", "out"}
    assert len(today) >= 20
    inbound = Message.objects.filter(direction="in")
    assert set(inbound.values_list("status", flat=True)) == {"received"}
    outbound = Message.objects.filter(direction="out")
    assert {"sent", "delivered", "read", "failed"} <= set(outbound.values_list("status", flat=True))
    assert not outbound.filter(status="failed", failure_reason="").exists()
    authors = set(Message.objects.values_list("author_kind", flat=True))
    assert authors == {"customer", "agent", "bot", "campaign", "reminder", "phone"}
    assert not outbound.filter(author_kind="agent", agent=None).exists()
    assert not Message.objects.filter(body__regex=r"\{[a-z_]+\}").exists()  # all rendered
    maria = Message.objects.filter(conversation__customer__phone="+593968196046")
    reminder = maria.get(author_kind="reminder", body__contains="*Netflix*")
    assert "vence el 17 de marzo (faltan 3 días)" in reminder.body
    assert maria.filter(body="Gracias, quiero renovar").exists()


def test_it_keeps_conversations_consistent_with_their_messages():
    demo_seed(now=ANCHOR)
    conversations = Conversation.objects.prefetch_related("messages")
    assert 100 <= conversations.count() <= 130
    for conversation in conversations:
        messages = sorted(conversation.messages.all(), key=lambda m: (m.created_at, m.id))
        last = messages[-1]
        assert conversation.last_message_at == last.created_at
        assert conversation.last_message_preview == last.body.replace("\n", " ")[:160]
        people = [m for m in messages if m.author_kind in ("customer", "agent", "phone")]
        if conversation.status == "new":  # perhaps after a bot's auto-reply
            waiting = list(takewhile(lambda m: m.direction == "in", reversed(people)))
            assert waiting and conversation.unread_count == len(waiting)
        else:
            assert conversation.unread_count == 0
        if conversation.status == "answered":
            assert last.direction == "out"
    statuses = set(conversations.values_list("status", flat=True))
    assert statuses == {"new", "answered", "resolved"}
    assert conversations.filter(urgent=True).exists()
    assert conversations.exclude(assignee=None).exists()
    carlos = conversations.get(customer__phone="+593987654321")
    assert carlos.status == "new" and local_date(carlos.last_message_at) == TODAY


def test_it_records_the_resolutions_the_analytics_measure():
    demo_seed(now=ANCHOR)
    resolved = Conversation.objects.filter(status="resolved")
    for conversation in resolved:
        last = conversation.resolutions.order_by("resolved_at").last()
        assert last is not None and last.resolved_at >= conversation.last_message_at
        assert last.assignee_id == conversation.assignee_id
    for r in Resolution.objects.all():
        assert r.resolved_at <= ANCHOR
        assert r.started_at is None or r.started_at <= r.resolved_at
    # Matters closed and reopened by the customer: more resolutions than resolved conversations.
    assert Resolution.objects.count() > resolved.count()
    rows = agent_stats_count(Period(TODAY - timedelta(days=29), TODAY))
    assert any(row["resolved"] and row["resolution"] for row in rows)


def test_it_stores_the_proposal_templates():
    demo_seed(now=ANCHOR)
    templates = dict(MessageTemplate.objects.values_list("name", "category"))
    demo = {
        "Promoción": "marketing",
        "Nuevo servicio": "marketing",
        "Soporte": "support",
        "Vencimiento": "notification",
        "Pago recibido": "support",
        "Recordatorio de pago": "notification",
    }
    # Migrations ship more (the automations' own); the demo's are all there.
    assert templates.items() >= demo.items()
    expiry = MessageTemplate.objects.get(name="Vencimiento").body
    assert "{servicio}" in expiry and "{dias_restantes}" in expiry


def test_it_leaves_existing_templates_alone():
    MessageTemplate.objects.update_or_create(
        name="Soporte", defaults={"category": "support", "body": "Hola {nombre}, ya te ayudamos."}
    )
    demo_seed(now=ANCHOR)
    assert MessageTemplate.objects.get(name="Soporte").body == "Hola {nombre}, ya te ayudamos."


def test_it_prints_credentials_that_log_in_with_their_roles(client):
    out = StringIO()
    call_command("seed_demo", "--now", ANCHOR.isoformat(), stdout=out)
    printed = out.getvalue()
    assert DEMO_URL in printed
    for spec in DEMO_USERS:
        assert spec.username in printed and spec.password in printed
        assert client.login(username=spec.username, password=spec.password)
        user = User.objects.get(username=spec.username)
        assert has_role(user, spec.role)
        client.logout()
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff and admin.groups.filter(name="admin").exists()
    agent = User.objects.get(username="agente")
    assert not agent.is_staff and not has_role(agent, "marketer")
    assert agent.get_full_name() == "Ana Torres"


def test_it_does_nothing_with_if_empty_on_a_non_empty_database():
    Customer.objects.create(name="Alguien", phone="+593991234567")
    out = StringIO()
    call_command("seed_demo", "--if-empty", stdout=out)
    assert Customer.objects.count() == 1
    assert not Message.objects.exists()
    assert not User.objects.filter(username="agente").exists()
    assert DEMO_URL in out.getvalue() and "chatdesk-admin" in out.getvalue()


def test_it_seeds_an_empty_database_with_if_empty():
    call_command("seed_demo", "--if-empty", stdout=StringIO())
    assert Customer.objects.count() == 200 + IMPORTED
    assert Message.objects.filter(created_at__lte=demo_now()).exists()


def test_it_refuses_existing_data_unless_forced():
    Customer.objects.create(name="Alguien", phone="+593991234567")
    with pytest.raises(CommandError, match="--force"):
        call_command("seed_demo", stdout=StringIO())
    assert Customer.objects.count() == 1
    call_command("seed_demo", "--force", "--now", ANCHOR.isoformat(), stdout=StringIO())
    assert Customer.objects.count() == 200 + IMPORTED
    assert not Customer.objects.filter(phone="+593991234567").exists()


def test_it_anchors_on_the_current_hour_by_default():
    now = demo_now()
    assert (now.minute, now.second, now.microsecond) == (0, 0, 0)

"""Outbound's reaction to a customer's message: opt-out / opt-in keywords, auto-reply rules and
the away message. The webhook intake calls `inbound_react_later` in the transaction that stores
a customer's message: it leaves a pending reaction row, and a worker reacts after the commit
(`inbound_react`), so the webhook answers without waiting for the rules. A reaction whose queue
entry was lost (a Redis restart) is found again by the sweep, from its pending row.

Precedence, for one inbound message:
1. an opt-out keyword (BAJA, STOP...) or an opt-in keyword (ALTA) as the *whole* message:
   the customer's marketing state changes and they get one confirmation, only when the state
   really changed (writing BAJA twice confirms once); nothing else runs. An opt-out also
   cancels the customer's marketing messages still waiting to be sent. An opt-out is applied
   however old the message is (a phone syncing a backlog, workers down for a day); only the
   bot's confirmation is left out when the message is older than REACT_MAX_AGE;
2. the first active auto-reply rule, by priority, whose keyword matches: reply from its
   template, tag, assign (only a conversation nobody has), mark urgent;
3. outside business hours, the away message, at most once per conversation per N hours.

A bot reply that answers (an auto-reply rule's, an opt-out or opt-in confirmation) makes a new
conversation "answered", as an agent's reply would; the away message does not: it answers
nothing, and the customer is still waiting for a person.

Loops are impossible by construction: only inbound customer messages react (the bot's own
replies are outbound rows), each inbound message reacts at most once (InboundReaction's primary
key is the message), and one rule answers a conversation at most once per RULE_COOLDOWN (a
customer's own auto-responder cannot ping-pong with ours).

Keywords compare without case, accents, punctuation or emoji: "Sí.", "SI" and "si 👍" are all
"si"; "No más" is "no mas". "Contains" matches whole words ("si" is in "si quiero", not in
"sigo").
"""

import logging
import re
import unicodedata
from datetime import datetime, time, timedelta

import dramatiq
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from dramatiq_crontab import interval

from chatdesk.bulk import insert_select
from customers.services import (
    customer_marketing_opt_in,
    customer_marketing_opt_out,
    tag_get_or_create,
)
from inbox.conversations import (
    conversation_assign,
    conversation_mark_bot_answered,
    conversation_mark_urgent,
)
from inbox.events import conversation_updated_publish
from inbox.models import Conversation, Message
from outbound.models import AutomationSettings, AutoReplyRule, AwayNotice, InboundReaction
from outbound.services import SendRejected, marketing_messages_cancel, message_send
from outbound.templating import TemplateError, template_render

log = logging.getLogger(__name__)

RULE_COOLDOWN = timedelta(minutes=10)
# A message older than this when it reaches us (a phone that reconnects and syncs a backlog)
# is stored for the agents but not answered by the bot (an opt-out still takes effect).
REACT_MAX_AGE = timedelta(hours=24)
# A pending reaction the worker has not taken this long after the message is swept up.
SWEEP_AFTER = timedelta(seconds=30)
WEEKDAYS = range(7)  # Monday is 0, as datetime.weekday()


# --- keywords -----------------------------------------------------------------------------------
def keyword_normalize(text: str) -> str:
    """Lower case, no accents, words joined by single spaces; punctuation and emoji dropped."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.findall(r"[^\W_]+", plain.casefold()))


def keywords_parse(raw: str) -> list[str]:
    """A comma-separated list as configured, normalised; empty entries dropped."""
    return [word for word in (keyword_normalize(part) for part in raw.split(",")) if word]


def keyword_match(text: str, keywords: list[str], *, exact: bool) -> str | None:
    """The first keyword found in the (normalised) text, or None."""
    padded = f" {text} "
    for keyword in keywords:
        if (text == keyword) if exact else (f" {keyword} " in padded):
            return keyword
    return None


# --- settings and business hours ------------------------------------------------------------
def automation_settings() -> AutomationSettings:
    found = AutomationSettings.objects.filter(pk=1).first()
    if found:
        return found
    try:
        with transaction.atomic():
            return AutomationSettings.objects.create(pk=1)
    except IntegrityError:
        return AutomationSettings.objects.get(pk=1)


def business_hours_parse(hours: dict) -> dict[int, tuple[time, time]]:
    """{"0": ["09:00", "19:00"], ...} -> {0: (09:00, 19:00)}; bad or empty days are closed."""
    week = {}
    for day in WEEKDAYS:
        value = hours.get(str(day), ()) if isinstance(hours, dict) else ()
        try:
            opens, closes = (time.fromisoformat(v) for v in value)
        except (TypeError, ValueError):
            continue
        if opens < closes:
            week[day] = (opens, closes)
    return week


def business_open(conf: AutomationSettings, at: datetime) -> bool:
    local = timezone.localtime(at)
    hours = business_hours_parse(conf.business_hours).get(local.weekday())
    return hours is not None and hours[0] <= local.time() < hours[1]


# --- the reaction ----------------------------------------------------------------------------
def inbound_react_later(*, message: Message) -> None:
    """In the intake's transaction: a pending reaction row (it commits with the message, so
    the sweep finds it if the queue entry is lost), then the worker after the commit."""
    InboundReaction.objects.create(
        message_id=message.pk, conversation_id=message.conversation_id, action=""
    )
    inbound_react_enqueue(message.pk)


def inbound_react_later_sql(source: str) -> tuple[str, list]:
    """inbound_react_later's pending reaction row as an INSERT ... SELECT from `source` (the
    new message: its id and conversation_id), for an intake that stores the message, the
    reaction and the raw event in one statement. After it: inbound_react_enqueue."""
    pending = InboundReaction(action="")
    return insert_select(
        pending,
        source=source,
        exprs={
            "message_id": (f"{source}.id", []),
            "conversation_id": (f"{source}.conversation_id", []),
        },
    )


def inbound_react_enqueue(message_id: int) -> None:
    transaction.on_commit(lambda: inbound_react_actor.send(message_id), robust=True)


@dramatiq.actor(actor_name="outbound_inbound_react", max_retries=3)
def inbound_react_actor(message_id: int) -> None:
    inbound_react(message_id)


@interval(seconds=30)
@dramatiq.actor(actor_name="outbound_inbound_reactions_sweep", max_retries=0)
def inbound_reactions_sweep() -> None:
    inbound_reactions_react_due()


def inbound_reactions_react_due(*, now: datetime | None = None, limit: int = 200) -> int:
    """Pending reactions nobody took (their queue entry was lost): react to them now. One that
    fails is left pending for the next sweep (after REACT_MAX_AGE it is closed unanswered)."""
    now = now or timezone.now()
    due = InboundReaction.objects.filter(action="", created_at__lte=now - SWEEP_AFTER)
    done = 0
    for pk in due.order_by("created_at").values_list("message_id", flat=True)[:limit]:
        try:
            done += bool(inbound_react(pk, now=now))
        except Exception:
            log.exception("reaction to message %s failed; the next sweep tries again", pk)
    return done


def _reaction_claim(message: Message, now: datetime) -> InboundReaction | None:
    """The message's reaction row, locked, when nobody has reacted yet: the pending one the
    intake left, or a new one. None when it is done or another worker holds it."""
    reaction = InboundReaction.objects.select_for_update().filter(message_id=message.pk).first()
    if reaction is not None:
        return None if reaction.action else reaction
    try:
        with transaction.atomic():
            return InboundReaction.objects.create(
                message=message, conversation_id=message.conversation_id, created_at=now
            )
    except IntegrityError:
        return None


def inbound_react(message_id: int, *, now: datetime | None = None) -> str:
    """React once to one inbound customer message; answers what was done ("" when nothing
    could be: not a customer message, already handled). All of it commits together."""
    now = now or timezone.now()
    message = (
        Message.objects.select_related("conversation__customer")
        .filter(pk=message_id, direction=Message.Direction.IN)
        .filter(author_kind=Message.Author.CUSTOMER)
        .first()
    )
    if message is None:
        return ""
    with transaction.atomic():
        reaction = _reaction_claim(message, now)
        if reaction is None:
            return ""
        reaction.created_at = now
        if now - message.created_at > REACT_MAX_AGE:
            actions = _react_late(message, now)
            reaction.note = "mensaje antiguo: sin respuesta automática"
        else:
            actions = _react(message, reaction, now)
        reaction.action = ",".join(actions)[:40] or "none"
        reaction.save(update_fields=["action", "note", "rule", "created_at"])
    return reaction.action


def _react(message: Message, reaction: InboundReaction, now: datetime) -> list[str]:
    conf = automation_settings()
    text = keyword_normalize(message.body)
    if text and keyword_match(text, keywords_parse(conf.opt_out_keywords), exact=True):
        return _opt_out(message, conf, now)
    if text and keyword_match(text, keywords_parse(conf.opt_in_keywords), exact=True):
        return _opt_in(message, conf)
    actions = []
    for rule in AutoReplyRule.objects.filter(active=True).select_related("template"):
        if text and keyword_match(text, keywords_parse(rule.keywords), exact=rule.match == "exact"):
            reaction.rule = rule
            actions += _rule_apply(rule, message, reaction, now)
            break
    if conf.away_enabled and not business_open(conf, now):
        every = timedelta(hours=max(conf.away_every_hours, 1))
        if _away_claim(message.conversation_id, now=now, every=every):
            _bot_reply(message, conf.away_message)
            actions.append("away")
    return actions


def _react_late(message: Message, now: datetime) -> list[str]:
    """An old message gets no bot reply, but an opt-out in it still counts."""
    conf = automation_settings()
    text = keyword_normalize(message.body)
    if text and keyword_match(text, keywords_parse(conf.opt_out_keywords), exact=True):
        return _opt_out(message, conf, now, confirm=False)
    return ["none"]


def _opt_out(
    message: Message, conf: AutomationSettings, now: datetime, *, confirm: bool = True
) -> list[str]:
    customer = message.conversation.customer
    said = " ".join(message.body.split())[:60]
    reason = _("Pidió la baja por WhatsApp: %(word)s") % {"word": said}
    # The customer's own time of asking, not ours: a late sync still dates it right.
    if not customer_marketing_opt_out(customer=customer, reason=reason, at=message.created_at):
        return ["opt_out_again"]
    marketing_messages_cancel(customer=customer)
    if confirm:
        _bot_reply(message, conf.opt_out_reply, answers=True)
    conversation_updated_publish(conversation_id=message.conversation_id)
    return ["opt_out"]


def _opt_in(message: Message, conf: AutomationSettings) -> list[str]:
    if not customer_marketing_opt_in(customer=message.conversation.customer):
        return ["opt_in_again"]
    _bot_reply(message, conf.opt_in_reply, answers=True)
    conversation_updated_publish(conversation_id=message.conversation_id)
    return ["opt_in"]


def _rule_apply(
    rule: AutoReplyRule, message: Message, reaction: InboundReaction, now: datetime
) -> list[str]:
    conversation: Conversation = message.conversation
    customer = conversation.customer
    actions = ["rule"]
    if rule.tag.strip():
        customer.tags.add(tag_get_or_create(name=rule.tag))
        conversation_updated_publish(conversation_id=conversation.id)
        actions.append("tag")
    if (
        conversation.assignee_id is None
        and rule.assign_to is not None  # None without a query when assign_to_id is
        and rule.assign_to.is_active
    ):
        conversation_assign(conversation=conversation, assignee=rule.assign_to)
        actions.append("assign")
    if rule.mark_urgent:
        conversation_mark_urgent(conversation=conversation, urgent=True)
        actions.append("urgent")
    if rule.template is None or rule.template.archived:
        return actions
    answered_lately = (
        InboundReaction.objects.filter(
            conversation_id=conversation.id, rule=rule, created_at__gte=now - RULE_COOLDOWN
        )
        .filter(action__contains="reply")
        .exclude(pk=message.pk)
        .exists()
    )
    if answered_lately:
        reaction.note = "ya respondida hace poco en esta conversación"
        return actions
    try:
        text = template_render(rule.template.body, customer=customer, today=timezone.localdate(now))
    except TemplateError as exc:
        reaction.note = f"sin respuesta: {exc}"[:300]
        return actions
    _bot_reply(message, text, answers=True)
    return [*actions, "reply"]


def _away_claim(conversation_id: int, *, now: datetime, every: timedelta) -> bool:
    """True for the one caller that may send the away message now (a conditional update, or
    the insert of the conversation's first notice)."""
    if AwayNotice.objects.filter(pk=conversation_id, sent_at__lte=now - every).update(sent_at=now):
        return True
    try:
        with transaction.atomic():
            AwayNotice.objects.create(conversation_id=conversation_id, sent_at=now)
    except IntegrityError:
        return False
    return True


def _bot_reply(message: Message, text: str, *, answers: bool = False) -> Message | None:
    try:
        reply = message_send(
            customer=message.conversation.customer,
            text=text,
            author_kind=Message.Author.BOT,
            reply_to=message,
            # On the number the customer wrote to (Meta's window is open: they just wrote).
            channel=message.conversation.channel_id,  # type: ignore[arg-type]  # FK default: never None
        )
    except SendRejected as exc:  # an empty or oversize configured text
        log.warning("auto-reply to message %s not sent: %s", message.pk, exc.message)
        return None
    if answers:
        conversation_mark_bot_answered(conversation=message.conversation)
    return reply


# --- what Meta tells the intake about templates and caps (the same seam) ----------------------


def template_status_react(event) -> str:
    """Meta approved, paused or rejected a template: its linked chatdesk templates learn it."""
    from outbound.meta_templates import meta_template_status_apply

    return meta_template_status_apply(event)


def marketing_cap_react(*, wa_id: str) -> None:
    """Meta held a marketing message back (131049): a new try is scheduled later."""
    from outbound.meta_templates import marketing_capped_wa_id

    marketing_capped_wa_id(wa_id=wa_id)

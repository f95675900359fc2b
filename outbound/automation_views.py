"""/automations/: reminder rules, auto-reply rules, opt-out keywords, business hours and away
message (admins and marketers). The renewal form is in renewal_views.py."""

from datetime import timedelta

from django.contrib import messages
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from chatdesk.roles import MARKETING, role_required
from outbound.automation_forms import (
    WEEKDAY_NAMES,
    AutomationSettingsForm,
    AutoReplyRuleForm,
    ReminderRuleForm,
)
from outbound.models import AutoReplyRule, ReminderRule
from outbound.reminders import reminder_stats
from outbound.rules import automation_settings, business_hours_parse

STATS_DAYS = 30
RULE_KINDS: dict[str, type[ReminderRule] | type[AutoReplyRule]] = {
    "reminder": ReminderRule,
    "reply": AutoReplyRule,
}


def _reminder_when(rule: ReminderRule) -> str:
    days = rule.days_from_expiry
    if rule.kind == ReminderRule.Kind.ANNIVERSARY:
        return _("en el aniversario")
    if days < 0:
        return ngettext("%(n)s día antes", "%(n)s días antes", -days) % {"n": -days}
    if days > 0:
        return ngettext("%(n)s día después", "%(n)s días después", days) % {"n": days}
    return _("el día del vencimiento")


@role_required(*MARKETING)
def automation_index(request):
    stats = reminder_stats(since=timezone.now() - timedelta(days=STATS_DAYS))
    reminders = list(ReminderRule.objects.select_related("template"))
    for rule in reminders:
        rule.stats = stats.get(rule.pk, {"sent": 0, "skipped": 0, "renewed": 0})
        rule.when = _reminder_when(rule)
    conf = automation_settings()
    hours = business_hours_parse(conf.business_hours)
    week = [(WEEKDAY_NAMES[day], hours.get(day)) for day in range(7)]
    context = {
        "reminders": reminders,
        "replies": AutoReplyRule.objects.select_related("template", "assign_to"),
        "conf": conf,
        "week": week,
        "stats_days": STATS_DAYS,
    }
    return render(request, "outbound/automation_index.html", context)


def _rule_form(request, form_class, instance, *, title: str):
    form = form_class(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Regla guardada."))
        return redirect("outbound:automation_index")
    return render(
        request, "outbound/automation_form.html", {"form": form, "title": title, "rule": instance}
    )


@role_required(*MARKETING)
def automation_reminder_edit(request, rule_id: int | None = None):
    rule = get_object_or_404(ReminderRule, pk=rule_id) if rule_id else None
    title = _("Editar recordatorio") if rule else _("Nuevo recordatorio")
    return _rule_form(request, ReminderRuleForm, rule, title=title)


@role_required(*MARKETING)
def automation_reply_edit(request, rule_id: int | None = None):
    rule = get_object_or_404(AutoReplyRule, pk=rule_id) if rule_id else None
    title = _("Editar respuesta automática") if rule else _("Nueva respuesta automática")
    return _rule_form(request, AutoReplyRuleForm, rule, title=title)


@require_POST
@role_required(*MARKETING)
def automation_toggle(request, kind: str, rule_id: int):
    """Activate or pause a rule (a conditional update: the state asked for, not a flip, so a
    double click cannot undo itself)."""
    model = RULE_KINDS.get(kind)
    if model is None:
        return redirect("outbound:automation_index")
    rule = get_object_or_404(model, pk=rule_id)
    active = request.POST.get("active") == "1"
    model.objects.filter(pk=rule.pk).update(active=active)
    rule.active = active  # type: ignore[attr-defined]  # both kinds have it; mypy joins them
    if request.htmx:
        template = "outbound/automation_index.html#toggle"
        return render(request, template, {"rule": rule, "kind": kind})
    return redirect("outbound:automation_index")


@role_required(*MARKETING)
def automation_settings_edit(request):
    conf = automation_settings()
    form = AutomationSettingsForm(request.POST or None, instance=conf)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.save()
        messages.success(request, _("Ajustes guardados."))
        return redirect("outbound:automation_index")
    return render(request, "outbound/automation_settings.html", {"form": form})

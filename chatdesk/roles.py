"""Roles are Django groups (created by a migration): admin, agent, marketer.

The server decides: views use `role_required`, sockets and the API call `has_role`; the nav
only mirrors those decisions.
"""

from functools import wraps

from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

ADMIN = "admin"
AGENT = "agent"
MARKETER = "marketer"
ROLES = (ADMIN, AGENT, MARKETER)
ROLE_LABELS = {ADMIN: _("Administrador"), AGENT: _("Agente"), MARKETER: _("Marketing")}

EVERYONE = ROLES
SUPPORT = (ADMIN, AGENT)
MARKETING = (ADMIN, MARKETER)


def user_roles(user) -> frozenset[str]:
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    if user.is_superuser:
        return frozenset(ROLES)
    cached = getattr(user, "_chatdesk_roles", None)
    if cached is None:
        cached = frozenset(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        user._chatdesk_roles = cached
    return cached


def has_role(user, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))


def role_required(*roles: str):
    """Login is already required everywhere (LoginRequiredMiddleware); this adds the role."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not has_role(request.user, *roles):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        wrapped.chatdesk_roles = frozenset(roles)
        return wrapped

    return decorator


# (url name, label, roles, the view-name prefix that marks the entry as current)
NAV = [
    ("home", _("Panel"), EVERYONE, "home"),
    ("inbox:index", _("Conversaciones"), SUPPORT, "inbox:"),
    ("outbound:campaign_list", _("Campañas"), MARKETING, "outbound:campaign"),
    ("outbound:template_list", _("Plantillas"), MARKETING, "outbound:template"),
    ("customers:list", _("Clientes"), EVERYONE, "customers:"),
    ("insights:index", _("Analítica"), MARKETING, "insights:"),
    ("outbound:automation_index", _("Automatizaciones"), MARKETING, "outbound:automation"),
    ("inbox:channels", _("Números"), (ADMIN,), "inbox:channel"),
]


def nav(request):
    """Context processor: the nav entries this user's role may open."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": [], "user_roles": frozenset()}
    items = []
    current = request.resolver_match.view_name if request.resolver_match else ""
    # The longest matching prefix marks the entry ("inbox:channel" is Números, not the inbox).
    prefixes = [prefix for *_, prefix in NAV if current.startswith(prefix)]
    here = max(prefixes, key=len, default=None)
    for name, label, roles, prefix in NAV:
        if has_role(user, *roles):
            items.append(
                {"name": name, "url": reverse(name), "label": label, "active": prefix == here}
            )
    return {"nav_items": items, "user_roles": user_roles(user)}


PROJECT_APPS = ("chatdesk", "customers", "inbox", "outbound", "insights")


def admin_role_grant_all(sender, using="default", **kwargs) -> None:
    """post_migrate: the admin role holds every permission of the project's apps, including
    those of models added after the roles migration (0002_roles only saw the first ones)."""
    if sender.label not in PROJECT_APPS:
        return
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    # Django creates them in a post_migrate receiver too, maybe after this one: make sure.
    create_permissions(sender, verbosity=0, using=using)
    group = Group.objects.using(using).filter(name=ADMIN).first()
    if group is not None:
        perms = Permission.objects.using(using).filter(content_type__app_label=sender.label)
        group.permissions.add(*perms)

"""The renewal form linked from the customer page (admins and agents, who take payments)."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from chatdesk.roles import SUPPORT, role_required
from customers.models import Customer
from outbound.automation_forms import RenewalForm
from outbound.renewals import RenewalRejected, renewal_record


@role_required(*SUPPORT)
def renewal_create(request, customer_id: int):
    customer = get_object_or_404(Customer, pk=customer_id)
    form = RenewalForm(request.POST or None, customer=customer)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            result = renewal_record(
                subscription=data["subscription"],
                months=data["months"],
                new_expiry=data["new_expiry"],
                amount=data["amount"],
                send_confirmation=data["send_confirmation"],
            )
        except RenewalRejected as exc:
            field = exc.field if exc.field in form.fields else None
            form.add_error(field, exc.message)
        else:
            renewal = result.renewal
            messages.success(
                request,
                _("Renovación registrada: %(service)s hasta el %(date)s.")
                % {
                    "service": renewal.subscription.service.name,
                    "date": renewal.new_expiry.strftime("%d/%m/%Y"),
                },
            )
            if result.confirmation_skipped:
                messages.warning(
                    request,
                    _("No se envió la confirmación: %(reason)s")
                    % {"reason": result.confirmation_skipped},
                )
            return redirect("customers:detail", customer_id=customer.pk)
    return render(request, "outbound/renewal_form.html", {"form": form, "customer": customer})

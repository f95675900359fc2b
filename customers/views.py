from django.contrib import messages
from django.core import signing
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from chatdesk.roles import EVERYONE, MARKETING, SUPPORT, has_role, role_required
from customers.forms import CustomerEditForm, CustomerFilterForm, ImportUploadForm
from customers.importer import (
    CREATE,
    REJECTED,
    ImportFileError,
    customer_import,
    customer_import_record,
    import_decode,
    import_max_bytes,
)
from customers.models import Customer, CustomerImport
from customers.selectors import (
    CustomerFilters,
    customer_filter_choices,
    customer_get,
    customer_renewals,
    customer_search,
)
from customers.services import customer_update

PAGE_SIZE = 50
PREVIEW_ROWS = 2000
IMPORT_SALT = "customers.import"
IMPORT_MAX_AGE = 60 * 60
RECENT_IMPORTS = 10


@role_required(*EVERYONE)
def customer_list(request):
    form = CustomerFilterForm(request.GET)
    customers = customer_search(filters=CustomerFilters(**form.filters()))
    page = Paginator(customers, PAGE_SIZE).get_page(request.GET.get("page"))
    template = "customers/customer_list.html"
    if request.htmx:
        template += "#results"
    context = {
        "form": form,
        "page": page,
        "total": Customer.objects.count(),
        "choices": customer_filter_choices(),
        "can_import": has_role(request.user, *MARKETING),
    }
    return render(request, template, context)


def _customer_or_404(customer_id: int) -> Customer:
    try:
        return customer_get(customer_id=customer_id)
    except Customer.DoesNotExist:
        raise Http404 from None


@role_required(*EVERYONE)
def customer_detail(request, customer_id: int):
    customer = _customer_or_404(customer_id)
    context = {
        "customer": customer,
        "renewals": customer_renewals(customer=customer),
        "can_edit": has_role(request.user, *MARKETING),
        "can_read_chats": has_role(request.user, *SUPPORT),
    }
    return render(request, "customers/customer_detail.html", context)


@role_required(*MARKETING)
def customer_edit(request, customer_id: int):
    customer = _customer_or_404(customer_id)
    if request.method == "POST":
        form = CustomerEditForm(request.POST)
        if form.is_valid():
            customer_update(customer=customer, **form.cleaned_data)
            messages.success(request, _("Cliente guardado."))
            return redirect("customers:detail", customer_id=customer.pk)
    else:
        form = CustomerEditForm.for_customer(customer)
    return render(request, "customers/customer_edit.html", {"customer": customer, "form": form})


def _read_upload(upload) -> bytes:
    """Stop one chunk past the cap: import_decode rejects it with a clear message."""
    data = bytearray()
    for chunk in upload.chunks():
        data += chunk
        if len(data) > import_max_bytes():
            break
    return bytes(data)


@role_required(*MARKETING)
def customer_import_view(request):
    """Upload -> preview (nothing written) -> confirm. Between the two steps the file travels
    in a signed, compressed hidden field: nothing to store or clean up, and it cannot be
    altered nor replayed by another user."""
    context = {
        "form": ImportUploadForm(),
        "max_mb": import_max_bytes() // (1024 * 1024),
        "recent": CustomerImport.objects.select_related("created_by")[:RECENT_IMPORTS],
    }
    if request.method == "POST" and "token" in request.POST:
        try:
            payload = signing.loads(request.POST["token"], salt=IMPORT_SALT, max_age=IMPORT_MAX_AGE)
        except signing.BadSignature:
            context["error"] = _("La vista previa caducó o no es válida; suba el archivo otra vez.")
            return render(request, "customers/customer_import.html", context)
        if payload.get("user") != request.user.pk:
            context["error"] = _("Esta vista previa es de otro usuario; suba el archivo otra vez.")
            return render(request, "customers/customer_import.html", context)
        try:
            report = customer_import(text=payload["text"], dry_run=False)
        except ImportFileError as exc:
            context["error"] = str(exc)
            return render(request, "customers/customer_import.html", context)
        customer_import_record(report=report, filename=payload["name"], user=request.user)
        context.update(stage="done", report=report, counts=report.counts, filename=payload["name"])
        context["recent"] = CustomerImport.objects.select_related("created_by")[:RECENT_IMPORTS]
        return render(request, "customers/customer_import.html", context)

    if request.method == "POST":
        form = ImportUploadForm(request.POST, request.FILES)
        context["form"] = form
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                text = import_decode(_read_upload(upload))
                report = customer_import(text=text, dry_run=True)
            except ImportFileError as exc:
                context["error"] = str(exc)
                return render(request, "customers/customer_import.html", context)
            shown = [r for r in report.rows if r.outcome == REJECTED]
            shown += [r for r in report.rows if r.outcome != REJECTED][:PREVIEW_ROWS]
            shown.sort(key=lambda r: r.line)
            token = signing.dumps(
                {"user": request.user.pk, "text": text, "name": upload.name},
                salt=IMPORT_SALT,
                compress=True,
            )
            context.update(
                stage="preview",
                report=report,
                counts=report.counts,
                shown=shown,
                hidden=len(report.rows) - len(shown),
                token=token,
                filename=upload.name,
                applicable=report.count(CREATE) + report.count("update"),
            )
    return render(request, "customers/customer_import.html", context)


EXAMPLE_CSV = (
    "nombre;telefono;ciudad;provincia;etiquetas;servicio;precio;inicio;vence;notas\n"
    "María Fernanda Torres;0968196046;Quito;Pichincha;VIP|Quito norte;Netflix;7,99;"
    "2025-01-10;2025-02-10;Paga por transferencia\n"
    "María Fernanda Torres;+593 96 819 6046;;;;Spotify;$4.99;10/01/2025;10/02/2025;\n"
    "Luis Alberto Cevallos;593987654321;Guayaquil;Guayas;Nuevo;Disney+;8.99;2025-01-15;"
    "2025-02-15;\n"
)


@role_required(*MARKETING)
def customer_import_example(request):
    # UTF-8 with a BOM so that Excel opens the accents correctly.
    response = HttpResponse("\ufeff" + EXAMPLE_CSV, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="clientes-ejemplo.csv"'
    return response

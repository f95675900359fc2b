from django.shortcuts import render

from chatdesk.roles import EVERYONE, role_required
from customers.models import Customer


@role_required(*EVERYONE)
def customer_list(request):
    return render(request, "customers/customer_list.html", {"customers": Customer.objects.all()[:50]})

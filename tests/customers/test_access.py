import pytest
from django.urls import reverse

from customers.models import Customer


@pytest.fixture
def urls(db):
    customer = Customer.objects.create(name="Ana", phone="+593968196046")
    return {
        "list": reverse("customers:list"),
        "detail": reverse("customers:detail", args=[customer.pk]),
        "edit": reverse("customers:edit", args=[customer.pk]),
        "import": reverse("customers:import"),
        "import_example": reverse("customers:import_example"),
    }


EVERYONE = ["list", "detail"]
MARKETING = ["edit", "import", "import_example"]


@pytest.mark.parametrize("persona", ["alice", "bob", "carla"])
@pytest.mark.parametrize("name", EVERYONE)
def test_it_lets_every_role_view_customers(request, client_for, urls, persona, name):
    user = request.getfixturevalue(persona)
    assert client_for(user).get(urls[name]).status_code == 200


@pytest.mark.parametrize("persona", ["alice", "carla"])
@pytest.mark.parametrize("name", MARKETING)
def test_it_lets_admin_and_marketer_import_and_edit(request, client_for, urls, persona, name):
    user = request.getfixturevalue(persona)
    assert client_for(user).get(urls[name]).status_code == 200


@pytest.mark.parametrize("name", MARKETING)
def test_it_forbids_an_agent_to_import_or_edit(bob, client_for, urls, name):
    client = client_for(bob)
    assert client.get(urls[name]).status_code == 403
    assert client.post(urls[name], {"name": "Hacked"}).status_code == 403
    assert Customer.objects.get().name == "Ana"


def test_it_hides_the_import_button_from_an_agent(bob, carla, client_for, urls):
    assert urls["import"] not in client_for(bob).get(urls["list"]).content.decode()
    assert urls["import"] in client_for(carla).get(urls["list"]).content.decode()


@pytest.mark.parametrize("name", EVERYONE + MARKETING)
def test_it_forbids_a_user_without_a_role(charlie, client_for, urls, name):
    assert client_for(charlie).get(urls[name]).status_code == 403


@pytest.mark.parametrize("name", EVERYONE + MARKETING)
def test_it_sends_a_logged_out_visitor_to_login(client, urls, name):
    response = client.get(urls[name])
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")

"""Every CSV export gets the same hostile cells (formulas, tabs, carriage returns, control
characters in names, texts, reasons, titles and places) and none comes out runnable: each
export goes through chatdesk.csvexport, the one definition of a safe cell."""

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from customers.models import Customer, Tag
from inbox.models import Conversation, Message
from insights.exports import EXPORTS
from outbound.models import Campaign, CampaignRecipient

HOSTILE = ['=HYPERLINK("http://evil")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "\x01=1"]


def rows_of(response) -> list[list[str]]:
    assert response.status_code == 200, response.status_code
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


@pytest.fixture
def hostile_world(db, bob):
    """One hostile value per text a person could have typed, at every place an export reads."""
    now = timezone.now()
    bob.first_name = HOSTILE[0]
    bob.save()
    customers = []
    for i, text in enumerate(HOSTILE):
        customer = Customer.objects.create(
            name=text, phone=f"+59399000{i:04d}", city=text, province=text
        )
        customer.tags.add(Tag.objects.create(name=f"{text} {i}"))
        conversation = Conversation.objects.create(customer=customer, assignee=bob)
        Message.objects.create(
            conversation=conversation,
            direction="in",
            author_kind="customer",
            status="received",
            body=text,
            created_at=now - timedelta(hours=2),
        )
        out = Message.objects.create(
            conversation=conversation,
            direction="out",
            author_kind="campaign",
            agent=bob,
            status="failed",
            body=text,
            failure_reason=text,
            created_at=now - timedelta(hours=1),
            failed_at=now - timedelta(hours=1),
        )
        customers.append((customer, out))
    campaign = Campaign.objects.create(
        title=HOSTILE[0], body=HOSTILE[1], state="completed", launched_at=now - timedelta(hours=1)
    )
    for (customer, out), text in zip(customers, HOSTILE, strict=True):
        CampaignRecipient.objects.create(
            campaign=campaign,
            customer=customer,
            message=out,
            state="skipped",
            skip_reason=text,
            body=text,
        )
    return {"customer": customers[0][0], "campaign": campaign}


def export_urls(world) -> list[str]:
    today = timezone.localdate()
    period = f"from={today - timedelta(days=1)}&to={today}"
    urls = [f"/insights/export/{kind}.csv?{period}" for kind in EXPORTS]
    urls.append(f"/inbox/customers/{world['customer'].pk}/history/?format=csv")
    urls.append(f"/campaigns/{world['campaign'].pk}/export.csv")
    return urls


def test_no_export_lets_a_spreadsheet_run_a_cell(client_for, alice, hostile_world):
    client = client_for(alice)
    seen = set()
    for url in export_urls(hostile_world):
        for row in rows_of(client.get(url))[1:]:
            for cell in row:
                assert not any(cell.startswith(h) for h in HOSTILE), (url, cell)
                seen.update(h for h in HOSTILE if cell.startswith("'" + h))
    # Every hostile value did reach some export (neutralised): the test fed them all.
    assert seen == set(HOSTILE)

"""Writes to conversations and messages (the webhook intake and the send pipeline use these)."""

from django.db import IntegrityError, transaction

from customers.models import Customer
from inbox.models import Conversation


def conversation_get_or_create(*, customer: Customer, session: str = "default") -> Conversation:
    conversation = Conversation.objects.filter(customer=customer, session=session).first()
    if conversation:
        return conversation
    try:
        with transaction.atomic():
            return Conversation.objects.create(customer=customer, session=session)
    except IntegrityError:
        return Conversation.objects.get(customer=customer, session=session)

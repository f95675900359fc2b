from decimal import Decimal

import pytest

from customers.models import Service


@pytest.fixture
def services(db):
    return {
        name: Service.objects.create(name=name, normal_price=Decimal(price))
        for name, price in [("Netflix", "7.99"), ("Disney+", "8.99"), ("Spotify", "4.99")]
    }

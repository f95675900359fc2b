import pytest

from customers.phones import InvalidPhone, phone_display, phone_normalize


@pytest.mark.parametrize(
    "raw",
    [
        "0968196046",
        "+593 96 819 6046",
        "593968196046",
        "+593968196046",
        "096-819-6046",
        "(09) 6819 6046",
        " 0968196046 ",
        "593968196046@s.whatsapp.net",
    ],
)
def test_it_normalises_every_spelling_to_one_e164(raw):
    assert phone_normalize(raw) == "+593968196046"


def test_it_keeps_foreign_numbers_with_their_country():
    assert phone_normalize("+1 415 555 2671") == "+14155552671"


@pytest.mark.parametrize("raw", ["", "   ", "abc", "12", "0968", "+593 12"])
def test_it_rejects_what_is_not_a_phone(raw):
    with pytest.raises(InvalidPhone):
        phone_normalize(raw)


def test_it_displays_e164_in_international_format():
    assert phone_display("+593968196046") == "+593 96 819 6046"

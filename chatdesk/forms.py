"""Form fields every app's forms share."""

from django import forms

# The largest id a 64-bit key column takes (the middleware's 404 for a URL past it, too).
ID_MAX = 2**63 - 1


class IdsField(forms.ModelMultipleChoiceField):
    """A choice of rows by id, where an id past 64 bits is an invalid choice like any other
    (SQLite cannot even bind it: its `__in` lookup raised OverflowError, a 500)."""

    def _check_values(self, value):
        for pk in value:
            try:
                too_big = abs(int(str(pk))) > ID_MAX
            except ValueError:
                continue  # not a number: Django's own check refuses it
            if too_big:
                raise forms.ValidationError(
                    self.error_messages["invalid_pk_value"],
                    code="invalid_pk_value",
                    params={"pk": str(pk)[:20]},
                )
        return super()._check_values(value)

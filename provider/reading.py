"""Small typed readers for webhook bodies, shared by every provider's payloads module: a value
of the wrong type makes the whole event a ParseError (its Spanish message names `where`)."""

from provider.records import ParseError


def read_obj(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise ParseError(f"{where}: se esperaba un objeto")
    return value


def read_opt_obj(parent: dict, name: str, where: str) -> dict:
    value = parent.get(name)
    return {} if value is None else read_obj(value, f"{where}.{name}")


def read_list(parent: dict, name: str, where: str) -> list:
    value = parent.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ParseError(f"{where}.{name}: se esperaba una lista")
    return value


def read_str(parent: dict, name: str, where: str) -> str:
    """An optional string ("" when absent); numbers are accepted where a provider sends digits."""
    value = parent.get(name)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ParseError(f"{where}.{name}: se esperaba texto")
    return str(value)

import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cloudapi"


def fixture_load(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def webhook_fixtures() -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob("*.json") if "object" in json.loads(p.read_text()))

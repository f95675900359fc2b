"""The ground floor: how chatdesk talks to WhatsApp providers. Each provider's HTTP client and
typed errors, its webhook payloads parsed into provider-neutral records (provider/records.py),
and its simulator. It imports no app of ours (an import contract in pyproject.toml says so).
"""

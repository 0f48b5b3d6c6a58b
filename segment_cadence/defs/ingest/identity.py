"""The identity map: customers known by email or phone in one source and by account id in
another, joined deterministically.

A shop's order export names the buyer by email; the CRM's customer file by account id.
When a source declares `identity: {email: COLUMN}` (or `phone`) and maps no customer_id,
its customer_id is the one of the customer whose normalised email (or phone) is the same:
an exact match, nothing fuzzy, so the same files always give the same map. Emails are
compared trimmed and lower-cased; phones by their digits alone. A key two customers share
goes to the smallest customer_id and is counted as ambiguous; a row whose key matches no
customer is quarantined as "no customer with this email".

The map is built from the customers file when it loads (landing.identity_map in the front
door's DuckDB) and read by the sources that refer to customers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from segment_cadence.defs.ingest.errors import IngestConfigError
from segment_cadence.defs.ingest.file_shapes import quoted

KINDS = ("email", "phone")
MAP_NAME = "identity_map"
MAP_TABLE = f"landing.{MAP_NAME}"
# The customer_id of a row whose key matches nobody: never a real id, so the rules refuse
# the row as an unknown customer (and say which kind of key did not match).
UNMATCHED_PREFIX = "?"


@dataclass(frozen=True)
class Identity:
    """How a source names its customers: by `kind` (email or phone), in file `column`."""

    kind: str
    column: str


def parse_identity(raw: Any, where: str) -> Identity | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in KINDS:
        raise IngestConfigError(
            f"{where}.identity: expected one of email or phone and the column holding it, "
            f"such as {{email: Email}}, got {raw!r}"
        )
    kind, column = next(iter(raw.items()))
    if not column:
        raise IngestConfigError(f"{where}.identity.{kind}: name the column that holds it")
    return Identity(str(kind), str(column))


def normalised(kind: str, column_sql: str) -> str:
    """The key a value is matched on (NULL when blank)."""
    text = f"trim(cast({column_sql} as varchar))"
    if kind == "email":
        return f"nullif(lower({text}), '')"
    return f"nullif(regexp_replace({text}, '[^0-9]', '', 'g'), '')"


def map_select(identity: Identity, customer_id_sql: str, landed: str) -> str:
    """The map from the landed customers: one row per key, its customer and how many
    customers share it."""
    key = normalised(identity.kind, quoted(identity.column))
    return (
        "select key, min(customer_id) as customer_id, count(distinct customer_id) as customers "
        f"from (select {key} as key, nullif(trim(cast({customer_id_sql} as varchar)), '') "
        f"as customer_id from {landed}) "
        "where key is not null and customer_id is not null group by key"
    )


def customer_id_sql(identity: Identity) -> str:
    """The customer_id of a row of a source that names its customers by this identity."""
    key = normalised(identity.kind, quoted(identity.column))
    return (
        f"coalesce((select m.customer_id from {MAP_TABLE} as m where m.key = {key}), "
        f"'{UNMATCHED_PREFIX}' || {key})"
    )

"""Per-config facts kept in a results store's ``meta`` table, as plain JSON rows
``KIND:CONFIG_HASH``, read back as data (nothing is imported or run) and attached to the
records of that config (``info[KINDS[KIND]]``), so every reader of the store sees them:

- ``floor``: a random policy's score measured by the sweep for an env without one
  (`rlsub.sweep.floor`: mean, standard error, episodes, seed), the d_int90 line's floor;
- ``sweep``: the state of the last sweep of the config on this store (``running`` while
  it runs, ``done`` when every trial it planned has finished; mode, trials), so a table
  made from a store whose sweep was stopped says so.

Imports: experiment.record.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from rlsub.experiment.record import TrialRecord

KINDS = {"floor": "measured_floor", "sweep": "sweep_state"}  # meta kind -> record info key


def put(conn: sqlite3.Connection, kind: str, config_hash: str, data: dict[str, Any]) -> None:
    with conn:
        conn.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"{kind}:{config_hash}", json.dumps(data))
        )


def read(conn: sqlite3.Connection, kind: str) -> dict[str, dict[str, Any]]:
    """Rows of `kind` by config hash; a row that is not a JSON mapping is left out, and a
    floor without a numeric mean too."""
    rows = conn.execute("SELECT key, value FROM meta WHERE key LIKE ?", (f"{kind}:%",))
    out = {}
    for key, value in rows.fetchall():
        try:
            data = json.loads(value)
        except (json.JSONDecodeError, TypeError):
            continue
        if not isinstance(data, dict):
            continue
        if kind == "floor" and not isinstance(data.get("mean"), int | float):
            continue
        out[key[len(kind) + 1 :]] = data
    return out


def attach(records: list[TrialRecord], conn: sqlite3.Connection) -> list[TrialRecord]:
    """The records, each with its config's kept facts in ``info``."""
    for kind, info_key in KINDS.items():
        kept = read(conn, kind)
        for rec in records:
            if rec.config_hash in kept:
                rec.info = {**rec.info, info_key: kept[rec.config_hash]}
    return records

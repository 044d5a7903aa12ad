"""Measured floor scores kept in a results store's ``meta`` table.

An env without a random score of its own gets one measured by the sweep
(`rlsub.sweep.floor`); it is kept as the row ``floor:CONFIG_HASH`` (JSON: mean,
standard error, episodes, seed), read back as plain data -- nothing is imported or
run -- and attached to the records of that config (``info["measured_floor"]``), so
every reader of the store draws the same line.

Imports: experiment.record.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from rlsub.experiment.record import TrialRecord

KEY = "floor:"


def put(conn: sqlite3.Connection, config_hash: str, floor: dict[str, Any]) -> None:
    with conn:
        conn.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"{KEY}{config_hash}", json.dumps(floor))
        )


def read(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Floors by config hash; rows that are not a JSON mapping with a numeric mean are
    left out."""
    rows = conn.execute("SELECT key, value FROM meta WHERE key LIKE ?", (f"{KEY}%",))
    out = {}
    for key, value in rows.fetchall():
        try:
            floor = json.loads(value)
        except (json.JSONDecodeError, TypeError):
            continue
        if isinstance(floor, dict) and isinstance(floor.get("mean"), int | float):
            out[key[len(KEY) :]] = floor
    return out


def attach(records: list[TrialRecord], floors: dict[str, dict[str, Any]]) -> list[TrialRecord]:
    """The records, each with its config's measured floor in ``info`` where one is kept."""
    for rec in records:
        if rec.config_hash in floors:
            rec.info = {**rec.info, "measured_floor": floors[rec.config_hash]}
    return records

"""Fold a results store's WAL into its file and switch it to the rollback journal, so the
store is one self-contained file to commit (no -wal / -shm beside it) and opens read-only
anywhere. A later sweep on it switches it back to WAL by itself.

    python scripts/checkpoint_stores.py docs/stores/*/*.sqlite
"""

import sqlite3
import sys

for path in sys.argv[1:]:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    finally:
        conn.close()
    print(f"{path}: journal_mode={mode}")

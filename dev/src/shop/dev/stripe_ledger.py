"""What the Stripe emulator has recorded (PaymentIntents, Refunds, the answers kept for
idempotency keys): in memory, and in an SQLite file when given one."""

import asyncio
import json
import secrets
import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any

from shop.dev.stripe_faults import Faults


class LedgerFile:
    """The ledger on disk: one row per object and per idempotency key, written as each
    changes (SQLite in WAL mode: a crash of the emulator loses nothing it answered)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Each statement commits. Opened where the app is made, used on the server's loop.
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS objects (id TEXT PRIMARY KEY, body TEXT)")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, fingerprint TEXT, "
            "status INTEGER, body TEXT)"
        )

    def objects(self) -> list[dict[str, Any]]:
        """Every object, in the order they were first written (rowid)."""
        rows = self.db.execute("SELECT body FROM objects ORDER BY rowid")
        return [json.loads(body) for (body,) in rows]

    def replies(self) -> dict[str, tuple[str, int, dict[str, Any]]]:
        rows = self.db.execute("SELECT key, fingerprint, status, body FROM replies")
        return {key: (seen, status, json.loads(body)) for key, seen, status, body in rows}

    def put(self, obj: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO objects (id, body) VALUES (?, ?) "
            "ON CONFLICT (id) DO UPDATE SET body = excluded.body",
            (obj["id"], json.dumps(obj)),
        )

    def put_reply(self, key: str, fingerprint: str, status: int, body: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?)",
            (key, fingerprint, status, json.dumps(body)),
        )


class Ledger:
    """Everything the emulator has recorded: in memory, and in `path` when given."""

    def __init__(self, path: Path | None = None) -> None:
        self.faults = Faults()
        self.intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        # idempotency key -> (request fingerprint, status, body), as Stripe keeps them
        self.replies: dict[str, tuple[str, int, dict[str, Any]]] = {}
        self.key_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.file = LedgerFile(path) if path else None
        if self.file:
            for obj in self.file.objects():
                if obj["object"] == "refund":
                    obj.setdefault("reason", None)  # kept before refunds had one
                kind = self.intents if obj["object"] == "payment_intent" else self.refunds
                kind[obj["id"]] = obj
            self.replies = self.file.replies()

    def save(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Record a new or changed object (on disk too); returns it."""
        if self.file:
            self.file.put(obj)
        return obj

    def keep_reply(self, key: str, fingerprint: str, status: int, body: dict[str, Any]) -> None:
        self.replies[key] = (fingerprint, status, body)
        if self.file:
            self.file.put_reply(key, fingerprint, status, body)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"

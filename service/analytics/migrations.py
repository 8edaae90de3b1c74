"""Versioned schema migrations, applied in order at startup and recorded in ``schema_migrations``.

Append a new ``Migration`` to change the schema; never edit one that has shipped. A database
whose version is newer than this code knows is refused, never "repaired".
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from service.analytics.db import Backend, Tx

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key: "crtw" in ASCII, so replicas migrate one at a time.
MIGRATION_LOCK = 0x63727477


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


# {id} is the dialect's auto-increment primary key; {float} its double type.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "sightings and sales", (
        """CREATE TABLE sightings (
            id {id},
            album_id TEXT NOT NULL,
            camera TEXT NOT NULL,
            ts {float} NOT NULL,
            confidence {float} NOT NULL,
            recorded_at {float} NOT NULL
        )""",
        "CREATE INDEX sightings_album_camera_ts ON sightings (album_id, camera, ts)",
        "CREATE INDEX sightings_ts ON sightings (ts)",
        """CREATE TABLE sales (
            id {id},
            sale_key TEXT NOT NULL UNIQUE,
            sale_id TEXT,
            sold_at {float} NOT NULL,
            album_id TEXT NOT NULL,
            quantity INTEGER NOT NULL,
            store TEXT,
            price {float},
            imported_at {float} NOT NULL
        )""",
        "CREATE INDEX sales_sold_at ON sales (sold_at)",
    )),
)

TYPES = {
    "sqlite": {"id": "INTEGER PRIMARY KEY", "float": "REAL"},
    "postgresql": {"id": "BIGSERIAL PRIMARY KEY", "float": "DOUBLE PRECISION"},
}


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer cratewatch."""


def latest_version() -> int:
    return MIGRATIONS[-1].version


def current_version(tx: Tx, float_type: str) -> int:
    tx.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
               f"name TEXT NOT NULL, applied_at {float_type} NOT NULL)")
    rows = tx.query("SELECT MAX(version) FROM schema_migrations")
    return int(rows[0][0] or 0)


def migrate(backend: Backend) -> list[int]:
    """Apply pending migrations in one transaction each; returns the versions applied."""
    applied: list[int] = []
    types = TYPES[backend.dialect]
    for migration in MIGRATIONS:
        with backend.transaction(lock_key=MIGRATION_LOCK) as tx:
            version = current_version(tx, types["float"])
            if version > latest_version():
                raise SchemaTooNew(f"analytics schema version {version} is newer than this "
                                   f"cratewatch knows ({latest_version()}); upgrade cratewatch")
            if migration.version <= version:
                continue
            for statement in migration.statements:
                tx.execute(statement.format(**types))
            tx.execute("INSERT INTO schema_migrations (version, name, applied_at) "
                       "VALUES (?, ?, ?)", (migration.version, migration.name, time.time()))
            applied.append(migration.version)
            log.info("analytics schema migrated to version %d (%s)", migration.version,
                     migration.name)
    return applied

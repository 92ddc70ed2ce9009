"""The `head_sightings` table: when a head scan first saw each new block, for the freshness SLI.

A scan whose head is above the chain's stored head writes one row for the blocks it revealed
(at most SIGHTING_MAX_BLOCKS of them, the newest), stamped with the database's clock; the
commit that stores a block reads its row back with the same clock, so freshness compares two
readings of one clock whichever hosts the scan and the store ran on. Rows older than
SIGHTING_RETENTION are pruned by the scans themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import asyncpg

# A head that jumps further than this at once (the indexer was down, a new chain's backlog)
# reveals old blocks, not new ones: only the newest this many are near the head. Also bounds
# how far below a batch's first block a sighting covering it can start.
SIGHTING_MAX_BLOCKS = 128
# A block committed more than this long after it was seen is not counted (its sighting is
# gone): such a chain is out of live sync for an hour, which that SLO pages on long before.
SIGHTING_RETENTION = timedelta(hours=1)

# One round trip per scan: prune, and record the blocks above both the stored head (set after
# this by the same scan) and the newest sighting (a scan that failed after recording its own
# did not move the head: its blocks were seen then, not at the retry). A chain without a head
# yet records nothing: its first head is a backlog, not news.
RECORD_SIGHTING = """
WITH pruned AS (
    DELETE FROM head_sightings
     WHERE chain_id = $1 AND seen_at < clock_timestamp() - $4::interval
), previous AS (
    SELECT GREATEST(head, (SELECT last_block
                             FROM head_sightings
                            WHERE chain_id = $1
                            ORDER BY first_block DESC
                            LIMIT 1)) AS head
      FROM chains
     WHERE id = $1
), news AS (
    SELECT head FROM previous WHERE head < $2
)
INSERT INTO head_sightings (chain_id, first_block, last_block, seen_at)
SELECT $1, GREATEST(head + 1, $2::bigint - $3::bigint + 1), $2, clock_timestamp()
  FROM news
    ON CONFLICT (chain_id, first_block) DO NOTHING
"""

# The sightings overlapping blocks $2..$3, with the database's clock now (after the commit).
# A sighting spans at most $4 blocks, so one overlapping $2 starts at $2 - $4 + 1 or above: a
# short primary-key range scan, empty for a backfill batch far below the head.
SIGHTINGS_OVERLAPPING = """
SELECT first_block,
       last_block,
       extract(epoch FROM seen_at)::float8           AS seen,
       extract(epoch FROM clock_timestamp())::float8 AS now
  FROM head_sightings
 WHERE chain_id = $1
   AND first_block BETWEEN $2::bigint - $4::bigint + 1 AND $3::bigint
   AND last_block >= $2::bigint
"""


@dataclass(frozen=True)
class Sighting:
    """Blocks first..last, first seen at `seen` (Unix seconds, the database's clock)."""

    first: int
    last: int
    seen: float


async def record_sighting(
    conn: asyncpg.Connection | asyncpg.Pool, chain_id: int, head: int
) -> None:
    """Record that a head scan saw `head`: the blocks above the stored head are new now."""
    await conn.execute(RECORD_SIGHTING, chain_id, head, SIGHTING_MAX_BLOCKS, SIGHTING_RETENTION)


async def sightings(
    conn: asyncpg.Connection | asyncpg.Pool, chain_id: int, first: int, last: int
) -> tuple[list[Sighting], float]:
    """The sightings covering any of blocks first..last, and the database's clock now."""
    rows = await conn.fetch(SIGHTINGS_OVERLAPPING, chain_id, first, last, SIGHTING_MAX_BLOCKS)
    if not rows:
        return [], 0.0
    found = [Sighting(r["first_block"], r["last_block"], r["seen"]) for r in rows]
    return found, float(rows[0]["now"])

"""Operation families and the bottleneck a strongly co-degrading pair points at."""

from collections.abc import Sequence
from fnmatch import fnmatchcase

MERGE = "MERGE_PIPELINE_SATURATION"
OBJECT_STORAGE = "OBJECT_STORAGE_IO"
QUERY_CACHE = "QUERY_CACHE_PRESSURE"
TRANSACTION_LOG = "TRANSACTION_LOG_SATURATION"
SHARED = "SHARED_RESOURCE_CONTENTION"

# (glob pattern, bottleneck type); the first match wins. Mirrored by the operation_families table
# of migration 0002 for the SQL views.
DEFAULT_FAMILIES: tuple[tuple[str, str], ...] = (
    ("merge*", MERGE),
    ("rebase*", MERGE),
    ("cherry_pick*", MERGE),
    ("conflict*", MERGE),
    ("object_store*", OBJECT_STORAGE),
    ("blob*", OBJECT_STORAGE),
    ("pack*", OBJECT_STORAGE),
    ("query_cache*", QUERY_CACHE),
    ("cache*", QUERY_CACHE),
    ("wal*", TRANSACTION_LOG),
    ("commit*", TRANSACTION_LOG),
    ("checkpoint*", TRANSACTION_LOG),
    ("txn*", TRANSACTION_LOG),
)

RECOMMENDATIONS: dict[str, str] = {
    MERGE: "Merge operations slow down together: the merge pipeline is saturated. Limit concurrent "
    "merges, check lock waits on refs, and look for unusually large merges or conflict storms.",
    OBJECT_STORAGE: "Object reads and writes slow down together: storage I/O is the bottleneck. "
    "Check disk latency and IOPS, pack file sizes, and TOAST/large-object traffic.",
    QUERY_CACHE: "Cache operations slow down together: the query cache is under pressure. Check "
    "the hit rate and evictions, and size shared_buffers / the cache for the working set.",
    TRANSACTION_LOG: "Commit and WAL operations slow down together: the transaction log is "
    "saturated. Check WAL write latency, checkpoint frequency, and synchronous replication.",
    SHARED: "Unrelated operations slow down together: they contend for a shared resource. Check "
    "CPU, connection-pool saturation, lock waits and autovacuum on the database host.",
}


def family_of(operation: str, families: Sequence[tuple[str, str]] = DEFAULT_FAMILIES) -> str | None:
    for pattern, kind in families:
        if fnmatchcase(operation, pattern):
            return kind
    return None


def classify_pair(
    operation_a: str, operation_b: str, families: Sequence[tuple[str, str]] = DEFAULT_FAMILIES
) -> tuple[str, str]:
    """``(bottleneck type, recommendation)`` for two operations that degrade together."""
    kind_a = family_of(operation_a, families)
    kind_b = family_of(operation_b, families)
    kind = kind_a if kind_a is not None and kind_a == kind_b else SHARED
    return kind, RECOMMENDATIONS[kind]

"""Runbook links: one page per alert type under ``docs/runbooks/``, hosted wherever a team likes.

An alert's own ``runbook_url`` annotation wins. Otherwise the alert type's page is linked under
``ALERT_DELIVERY_RUNBOOK_URL``; with no base configured the page is named by its path in the
repository, so nobody is sent to a domain that does not exist.
"""

PAGES = {
    "STATISTICAL": "statistical",
    "P99_DEGRADATION": "p99-degradation",
    "COMBINED": "combined",
    "MERGE_PIPELINE_SATURATION": "merge-pipeline-saturation",
    "OBJECT_STORAGE_IO": "object-storage-io",
    "QUERY_CACHE_PRESSURE": "query-cache-pressure",
    "TRANSACTION_LOG_SATURATION": "transaction-log-saturation",
    "SHARED_RESOURCE_CONTENTION": "shared-resource-contention",
    "BASELINE_RECALC_ERROR": "baseline-recalc-error",
    "PIPELINE_FAILURE": "pipeline-failure",
}
REPOSITORY_DIR = "docs/runbooks"


def runbook_page(alert_type: str) -> str | None:
    """``docs/runbooks/<page>.md`` relative path of the alert type's page, if it has one."""
    page = PAGES.get(alert_type)
    return f"{REPOSITORY_DIR}/{page}.md" if page else None


def runbook_link(alert_type: str, given: str | None, base: str) -> str | None:
    """The https link to show, or None: ``given`` (the annotation) if https, else the page."""
    if given and given.startswith("https://"):
        return given
    page = PAGES.get(alert_type)
    if page is None or not base:
        return None
    return f"{base}/{page}.md"

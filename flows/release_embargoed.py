"""Scheduled: embargoed products whose release date has passed become public."""

from __future__ import annotations

from prefect import flow, get_run_logger

from firstlight.services.context import context_for
from firstlight.services.embargo import release_embargoed as publish_due_products


@flow(name="release-embargoed")
def release_embargoed() -> list[str]:
    """Copy every product past its release date from the embargo store to the public one."""
    published = publish_due_products(context_for())
    logger = get_run_logger()
    for item in published:
        logger.info("%s: %s is public", item.release_key, item.path)
    return [item.storage_key for item in published]

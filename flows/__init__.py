"""Prefect flows: thin orchestration over firstlight.services."""

"""Dagster definitions for operations (filled in by its issue)."""

import dagster as dg

defs = dg.Definitions()

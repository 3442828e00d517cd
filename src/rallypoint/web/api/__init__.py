"""Rallypoint native REST API (JSON, OpenAPI) under /api/."""

"""The moderator-facing HTTP layer: the JSON API under /api/v1 and the moderator page."""

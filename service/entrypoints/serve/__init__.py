"""`moderation serve`: one process, or a front and N workers."""

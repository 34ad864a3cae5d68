"""The bodies of the `moderation` command-line commands."""

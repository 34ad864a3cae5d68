"""The wire contracts: the event codec and the JSON Schema of every event (imports only the
domain)."""

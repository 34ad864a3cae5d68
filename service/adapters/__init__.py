"""Adapters the use cases drive, behind their ports: the SQL stores, the model, metrics, the
policy file, the model registry, the tokens file, language detection, the outbox relay, logs.
They translate; they hold no policy."""

"""What drives the use cases: the Kafka loops, the HTTP app, the CLI commands and `serve`."""

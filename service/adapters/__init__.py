"""Adapters at the edges: Kafka, the model, encoding. They translate; they hold no policy."""

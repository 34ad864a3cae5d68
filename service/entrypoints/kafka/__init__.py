"""The Kafka consumer loops: comments in, decisions out; reports and appeals in."""

"""Comment moderation service: Kafka in, spam/abuse scores, decisions out."""

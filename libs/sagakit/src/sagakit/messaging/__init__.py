"""Messages on Kafka: the envelope, the contracts registry, the producer and consumer wrappers."""

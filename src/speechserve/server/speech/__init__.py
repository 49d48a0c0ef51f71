"""The speech (text-to-speech) API family: wire models, serving logic, deliveries, route."""

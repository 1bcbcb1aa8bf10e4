"""How work moves: requests kept until answered, deliveries in the outbox, due jobs
and the worker that runs them."""

"""services/callbacks: the inbound callback route, signed callbacks, concurrency."""

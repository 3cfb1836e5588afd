"""services/sync: sync runs against the partner simulator, the scheduler, the Huey queue and worker."""

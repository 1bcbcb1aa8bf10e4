"""whoknows: the platform-neutral core (domain, storage, services, ranking, runtime)."""

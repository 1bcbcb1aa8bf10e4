"""whoknows: the platform-neutral core (domain, storage, services, router, CLI)."""

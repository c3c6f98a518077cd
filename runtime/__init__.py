"""actorflow's runtime package."""

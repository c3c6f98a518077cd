"""actorflow's actors package."""

"""actorflow's conventions package."""

"""Planner brains. Both honour one contract (agent.brain.base.Brain); the offline one is the default and fallback."""

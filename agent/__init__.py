"""The planner agent: brief → storyboard → clips → script → gap fill → Timeline → render (LangGraph)."""

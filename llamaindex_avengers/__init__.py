"""LlamaIndex integration of avengers-router (see issue: AvengersLLM)."""

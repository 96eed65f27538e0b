"""Every LLM call of e3 goes through :class:`e3.llm.client.LLMClient` (litellm for providers,
diskcache for seeded, replayable responses, a reviewable JSONL export under ``results/llm/``)."""

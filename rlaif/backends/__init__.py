"""Model backends behind one batch-first protocol (see base.py).

`get_backend("openai:gpt-4o-mini")`, `"anthropic:claude-..."`, `"vllm:PATH"`,
`"hf:PATH"`, `"local"`. SDKs are imported lazily inside each backend module.
"""

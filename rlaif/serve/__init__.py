"""`rlaif serve`: judges and reward models as an HTTP service that RL trainers call.

A thin ASGI layer (Starlette on uvicorn) over the same scorers as `--reward` specs (`rlaif.rewards`) and the
judges (`rlaif.judge`): no second call path, no second cache. Modules: `scorers` (what is loaded, batch
functions), `batching` (the per-scorer coalescer), `app` (routes), `schemas` (request validation), `limits`
(limits and JSON errors), `auth` (bearer token, bind check), `metrics` (Prometheus), `openrlhf` (the
/get_reward contract: cutting the response from `query`), `server` (uvicorn, SIGTERM drain).
"""

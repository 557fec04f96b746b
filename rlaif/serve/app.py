"""The ASGI app (Starlette): routes over the scorers, each scorer behind its own coalescer.

    POST /get_reward    OpenRLHF's remote reward (see `rlaif.serve.openrlhf`); `?scorer=NAME` picks the scorer;
                        `?group=JUDGE[&pairs=M]`: a prompt's samples judged against each other (`serve.groups`)
    POST /v1/score      pointwise: a score, the raw output and the error per item and scorer
    POST /v1/compare    pairwise: both orders mapped back to a/b, the order-averaged P(a wins), flipped
    GET  /v1/judges     what is loaded (names, kinds, rater ids) and the limits
    GET  /healthz       liveness (no token needed)
    GET  /metrics       Prometheus text

Every answer is JSON; every refusal is `{"error": {...}}` (`rlaif.serve.limits`). No CORS headers are
sent, so browsers on other origins cannot read answers.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rlaif.redact import redact
from rlaif.serve.auth import OPEN_PATHS, check_token
from rlaif.serve.batching import BatchStats, Coalescer, QueueFull
from rlaif.serve.drain import Drain
from rlaif.serve.limits import ApiError, Limits, check_json_text, read_body
from rlaif.serve.metrics import Metrics
from rlaif.serve.openrlhf import cut_query, label_metadata
from rlaif.serve.schemas import (
    CompareRequest,
    GetRewardRequest,
    ScoreRequest,
    check_compare,
    check_get_reward,
    check_score,
    messages,
    parse,
)
from rlaif.serve.scorers import Comparison, PairInput, PointScore, ScoreInput, Scorers

log = logging.getLogger("rlaif.serve")
LOGGED_REFUSALS = ("too_deep",)  # hostile bodies: one line each in the service's log, never a stack


@dataclass
class Batching:
    max_batch: int = 64
    max_wait_ms: float = 2.0
    max_queue: int = 4096


@dataclass
class Service:
    """What the routes share: the scorers, their coalescers, limits, token and metrics."""

    scorers: Scorers
    limits: Limits = field(default_factory=Limits)
    batching: Batching = field(default_factory=Batching)
    token: str | None = None
    unscored_reward: float | None = None  # what /get_reward sends for an unscored item (None: null)
    metrics: Metrics = field(default_factory=Metrics)
    drain: Drain = field(default_factory=Drain)  # SIGTERM: new requests 503, running ones finish (rlaif.serve.drain)
    queues: dict[str, Coalescer] = field(default_factory=dict)

    def start(self) -> None:
        b = self.batching
        for name, s in {**self.scorers.point, **self.scorers.pair}.items():
            run = s.score_batch if name in self.scorers.point else s.compare_batch
            self.queues[name] = Coalescer(name, run, s.failure, max_batch=b.max_batch,
                                          max_wait_s=b.max_wait_ms / 1000, max_queue=b.max_queue,
                                          on_batch=self._on_batch,
                                          on_shared=self.metrics.coalesced.labels(name).inc)
            self.queues[name].start()
        self.metrics.on_scrape(self._scrape)

    async def stop(self) -> None:
        for q in self.queues.values():
            await q.stop()

    def _on_batch(self, st: BatchStats) -> None:
        self.metrics.batch_size.labels(st.scorer).observe(st.size)
        self.metrics.items.labels(st.scorer).inc(st.size)

    def _scrape(self) -> None:
        for name, q in self.queues.items():
            self.metrics.queue_depth.labels(name).set(q.depth)
            scorer = self.scorers.point.get(name) or self.scorers.pair[name]
            calls, hits = scorer.usage()
            self.metrics.model_calls.labels(name).set(calls)
            self.metrics.cache_hits.labels(name).set(hits)

    async def run(self, scorer: str, items: list) -> list:
        """Items through `scorer`'s coalescer; a full queue is 429 with Retry-After."""
        q = self.queues[scorer]
        keys = [_key(it) for it in items]
        try:
            out = await q.submit(keys, items)
        except QueueFull as e:
            self.metrics.rejected.labels(scorer).inc()
            raise ApiError(429, "queue_full", f"{e}: try again in {e.retry_after}s", limit="max_queue",
                           allowed=e.limit, fix="retry after Retry-After seconds, add replicas, or start the "
                                                "service with a higher --max-queue",
                           headers={"Retry-After": str(e.retry_after)}) from None
        for r in out:
            if r.error is not None:
                self.metrics.errors.labels(scorer, r.kind or "scorer").inc()
        return out


def _key(item: ScoreInput | PairInput) -> str:
    blob = json.dumps(asdict(item), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _point_scorer(service: Service, name: str | None, where: str) -> str:
    name = name or service.scorers.reward
    if name not in service.scorers.point:
        raise ApiError(422, "unknown_scorer", f"no pointwise scorer '{name}' is loaded; loaded: "
                       f"{', '.join(service.scorers.point)}", field=where)
    return name


async def get_reward(service: Service, request: Request) -> dict:
    req = parse(await read_body(request, service.limits), GetRewardRequest)
    check_get_reward(req, service.limits)
    if "group" in request.query_params:  # group-relative rewards from a pairwise judge
        from rlaif.serve.groups import group_reward

        return await group_reward(service, req, request.query_params)
    scorer = _point_scorer(service, request.query_params.get("scorer"), "scorer")
    n = len(req.query)
    if n == 0:  # OpenRLHF's multi-URL client sends the servers past its batch's size empty lists
        return {"rewards": [], "scores": [], "extra_logs": {}, "errors": []}
    cuts = [cut_query(q, None if req.prompts is None else req.prompts[i]) for i, q in enumerate(req.query)]
    labels = req.labels or [None] * n
    for i, label in enumerate(labels):  # a label that looks like JSON is parsed (rlaif.serve.openrlhf.label_metadata)
        if isinstance(label, str):
            check_json_text(label, f"labels.{i}")
    todo = [i for i, c in enumerate(cuts) if c.error is None]
    items = [ScoreInput(cuts[i].messages, cuts[i].response, label_metadata(labels[i])) for i in todo]
    results: list[PointScore] = [PointScore(None, error=c.error, kind="input") for c in cuts]
    for i, r in zip(todo, await service.run(scorer, items) if items else [], strict=True):
        results[i] = r
    unscored = sum(r.value is None for r in results)
    if unscored:
        service.metrics.unscored.labels(scorer).inc(unscored)
    # --unscored-reward: OpenRLHF turns the rewards into a tensor, which a null breaks; the errors still say why
    fill = service.unscored_reward
    rewards = [fill if r.value is None else r.value for r in results]
    return {"rewards": rewards, "scores": rewards, "extra_logs": {"scored": n - unscored, "unscored": unscored},
            "errors": [None if r.error is None else f"{scorer}: {r.error}" for r in results]}


async def score(service: Service, request: Request) -> dict:
    req = parse(await read_body(request, service.limits), ScoreRequest)
    check_score(req, service.limits)
    names = req.scorers
    if names is None:
        constrained = any(it.constraints for it in req.items)
        names = [n for n in service.scorers.point if n != "rule" or constrained]
    for n in names:
        _point_scorer(service, n, "scorers")
    items = [ScoreInput(messages(it.prompt), it.response,
                        {k: v for k, v in (("constraints", it.constraints), ("reference", it.reference)) if v})
             for it in req.items]
    per_scorer = dict(zip(names, await asyncio.gather(*(service.run(n, items) for n in names)), strict=True))
    return {"scorers": names, "results": [
        {"id": it.id, "scores": {n: per_scorer[n][i].value for n in names},
         "raw": {n: per_scorer[n][i].raw for n in names}, "errors": {n: per_scorer[n][i].error for n in names}}
        for i, it in enumerate(req.items)]}


def _comparison_json(c: Comparison, item_id: str | None) -> dict:
    return {"id": item_id, "p_a": c.p_a, "winner": c.winner, "flipped": c.flipped, "error": c.error,
            "orders": {o: asdict(v) for o, v in c.orders.items()}}


def _no_pair_judge(asked: str | None, loaded: list[str]) -> ApiError:
    """Why /v1/compare cannot answer: no pairwise judge loaded, several and none named, or an unknown name."""
    if not loaded:
        return ApiError(422, "no_pairwise_judge", "this service has no pairwise judge, so /v1/compare cannot "
                        "answer (it was started without a pairwise --judge)", field="judge",
                        fix="start the service with one, e.g. `rlaif serve -j pairwise-logprob` (local) or "
                            "`rlaif serve -j pairwise --judge-model openai:gpt-4o-mini`; /v1/score needs none")
    if asked is None:
        return ApiError(422, "unknown_judge", f"{len(loaded)} pairwise judges are loaded ({', '.join(loaded)}) "
                        "and the request names none", field="judge", fix=f"add \"judge\": \"{loaded[0]}\" to the "
                        f"body (RewardClient.compare(..., judge='{loaded[0]}'))")
    return ApiError(422, "unknown_judge", f"no pairwise judge '{asked}' is loaded; loaded: {', '.join(loaded)}",
                    field="judge", fix=f"name one of: {', '.join(loaded)}")


async def compare(service: Service, request: Request) -> dict:
    req = parse(await read_body(request, service.limits), CompareRequest)
    check_compare(req, service.limits)
    pair = service.scorers.pair
    name = req.judge or (next(iter(pair)) if len(pair) == 1 else None)
    if name not in pair:
        raise _no_pair_judge(req.judge, list(pair))
    items = [PairInput(messages(it.prompt), it.response_a, it.response_b) for it in req.items]
    out = await service.run(name, items)
    return {"judge": name, "rater": pair[name].rater,
            "results": [_comparison_json(c, it.id) for c, it in zip(out, req.items, strict=True)]}


async def judges(service: Service, request: Request) -> dict:
    s = service.scorers
    return {"reward": s.reward,
            "scorers": [{"name": n, "kind": p.kind, "rater": p.rater, "endpoint": "/v1/score"}
                        for n, p in s.point.items()]
            + [{"name": n, "kind": "pairwise", "rater": p.rater, "endpoint": "/v1/compare"} for n, p in s.pair.items()],
            "limits": asdict(service.limits), "batching": asdict(service.batching)}


async def healthz(service: Service, request: Request) -> dict:
    return {"status": "ok"}


def _endpoint(service: Service, name: str, handler: Callable[[Service, Request], Awaitable[dict]]):
    async def endpoint(request: Request) -> Response:
        t0 = time.perf_counter()
        drain = service.drain
        if drain.draining:
            response: Response = drain.refusal("the service is stopping and takes no new requests")
        else:
            task = asyncio.current_task()
            drain.tasks.add(task)
            try:
                response = await _answer(service, name, handler, request)
            except asyncio.CancelledError:
                if not drain.expired:  # not ours (the server is going down hard): let it through
                    raise
                if hasattr(task, "uncancel"):  # 3.11+: ours, handled; later awaits of this task run normally
                    task.uncancel()
                response = drain.refusal("the service stopped before this request finished (--drain-timeout)")
            finally:
                drain.tasks.discard(task)
            if drain.draining:  # finished during the drain: the client must not send its next request here
                response.headers["Connection"] = "close"
        service.metrics.requests.labels(name, str(response.status_code)).inc()
        service.metrics.latency.labels(name).observe(time.perf_counter() - t0)
        return response

    return endpoint


async def _answer(service: Service, name: str, handler: Callable[[Service, Request], Awaitable[dict]],
                  request: Request) -> Response:
    """The handler's JSON, or its refusal; a bug is a JSON 500 without secrets (and one log line), never a crash."""
    try:
        if request.url.path not in OPEN_PATHS:
            check_token(service.token, request.headers.get("authorization"))
        return JSONResponse(await handler(service, request))
    except ApiError as e:
        if e.code in LOGGED_REFUSALS:
            log.warning("refused %s %s: %s", name, e.status, e.message)
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers)
    except Exception as e:
        message = redact(f"{type(e).__name__}: {e}")
        log.error("internal error in %s: %s", name, message)
        return JSONResponse({"error": {"code": "internal", "message": message}}, status_code=500)


def build_app(service: Service, on_ready: Callable[[], None] | None = None) -> Starlette:
    async def metrics(request: Request) -> Response:
        try:
            check_token(service.token, request.headers.get("authorization"))
        except ApiError as e:
            return JSONResponse(e.body(), status_code=e.status, headers=e.headers)
        return Response(service.metrics.render(), media_type=service.metrics.content_type)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        service.start()
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            await service.stop()

    routes = [Route("/get_reward", _endpoint(service, "get_reward", get_reward), methods=["POST"]),
              Route("/v1/score", _endpoint(service, "score", score), methods=["POST"]),
              Route("/v1/compare", _endpoint(service, "compare", compare), methods=["POST"]),
              Route("/v1/judges", _endpoint(service, "judges", judges), methods=["GET"]),
              Route("/healthz", _endpoint(service, "healthz", healthz), methods=["GET"]),
              Route("/metrics", metrics, methods=["GET"])]
    return Starlette(routes=routes, lifespan=lifespan)

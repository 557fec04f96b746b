"""The request bodies, validated with pydantic: a malformed body is 400 (not JSON) or 422 naming the field.

    POST /get_reward   {"query": [str], "prompts": [str] | null, "labels": [any] | null}  (OpenRLHF; more keys ignored)
    POST /v1/score     {"items": [{"prompt", "response", "constraints"?, "reference"?, "id"?}], "scorers"?: [str]}
    POST /v1/compare   {"items": [{"prompt", "response_a", "response_b", "id"?}], "judge"?: str}

A prompt is a string (one user turn) or a list of chat messages `{"role", "content"}`.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from rlaif.serve.limits import ApiError, Limits, check_items, check_text, load_json


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GetRewardRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # OpenRLHF may send more in later versions
    query: list[str]
    prompts: list[str] | None = None
    labels: list[Any] | None = None


class ScoreItem(_Strict):
    prompt: str | list[Message]
    response: str
    constraints: list[dict] | None = None
    reference: str | None = None
    id: str | None = None

    @field_validator("prompt")
    @classmethod
    def _non_empty(cls, v: Any) -> Any:
        if isinstance(v, list) and not v:
            raise ValueError("an empty message list: give at least the user turn")
        return v


class ScoreRequest(_Strict):
    items: list[ScoreItem]
    scorers: list[str] | None = None


class CompareItem(_Strict):
    prompt: str | list[Message]
    response_a: str
    response_b: str
    id: str | None = None


class CompareRequest(_Strict):
    items: list[CompareItem]
    judge: str | None = None


def messages(prompt: str | list[Message]) -> list[dict]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [m.model_dump() for m in prompt]


def parse(body: bytes, model: type[BaseModel]) -> Any:
    """JSON bytes -> the validated request, or ApiError 400/422 naming the field."""
    data = load_json(body)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "body"
        problems = [{"field": ".".join(str(x) for x in err["loc"]) or "body", "problem": err["msg"]}
                    for err in e.errors()[:20]]
        raise ApiError(422, "invalid_request", f"{where}: {first['msg']}", field=where, problems=problems) from None


def check_get_reward(req: GetRewardRequest, limits: Limits) -> None:
    n = len(req.query)
    # OpenRLHF's client splits a batch over its reward URLs, so servers past the batch's size get empty lists
    check_items(n, limits, "query", allow_empty=True)
    for field, values in (("prompts", req.prompts), ("labels", req.labels)):
        if values is not None and len(values) != n:
            raise ApiError(422, "invalid_request", f"'{field}' has {len(values)} entries for {n} queries: "
                                                   "give one per query (or leave it out)", field=field)
    for i, q in enumerate(req.query):
        check_text(q, limits, f"query.{i}")


def _check_prompt(prompt: str | list[Message], limits: Limits, field: str) -> None:
    texts = [prompt] if isinstance(prompt, str) else [m.content for m in prompt]
    for t in texts:
        check_text(t, limits, field)


def check_score(req: ScoreRequest, limits: Limits) -> None:
    check_items(len(req.items), limits, "items")
    for i, it in enumerate(req.items):
        _check_prompt(it.prompt, limits, f"items.{i}.prompt")
        check_text(it.response, limits, f"items.{i}.response")


def check_compare(req: CompareRequest, limits: Limits) -> None:
    check_items(len(req.items), limits, "items")
    for i, it in enumerate(req.items):
        _check_prompt(it.prompt, limits, f"items.{i}.prompt")
        check_text(it.response_a, limits, f"items.{i}.response_a")
        check_text(it.response_b, limits, f"items.{i}.response_b")

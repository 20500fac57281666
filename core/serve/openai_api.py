"""The OpenAI-compatible HTTP API (the parts chat clients use): GET /v1/models and POST /v1/chat/completions,
streamed as server-sent events or answered whole, the model (base, run adapter or export) picked per
request by the `model` field. Every request goes through the Batcher, so concurrent requests, whatever
adapter each names, are answered together.

Any OpenAI client works against it unchanged, e.g. `OpenAI(base_url="http://127.0.0.1:8000/v1",
api_key="unused")`. Errors come back in OpenAI's shape ({"error": {"message", "type", "code"}}) with
400 for a bad request, 404 for an unknown model and 503 when the device is busy with another job.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from core.config import GenerationSection
from core.errors import DeviceBusyError, StudioError
from core.inference import answering
from core.inference.choices import ModelChoice
from core.inference.streaming import Reply
from core.serve.batcher import Batcher, Ticket

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str = "text"
    text: str = ""


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = ""

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content if part.type == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The fields that matter here; others clients send (user, seed, …) are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int = 1


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.kind = status, message, code, kind

    def response(self) -> JSONResponse:
        return JSONResponse({"error": {"message": self.message, "type": self.kind, "param": None, "code": self.code}},
                            status_code=self.status)


def create_app(batcher: Batcher, served: dict[str, ModelChoice]) -> FastAPI:
    """The API over `batcher`; `served` maps the names clients use to the models (each key works too)."""
    models = {**{choice.key: choice for choice in served.values()}, **served}
    created = int(time.time())
    app = FastAPI(title="LoRA Studio API", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return error.response()

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"] if part != "body")
        return ApiError(400, f"Invalid request: {where}: {first['msg']}.", "invalid_request").response()

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "created": created, "owned_by": "lora-studio"}
                                           for name in served]}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatCompletionRequest) -> JSONResponse | StreamingResponse:
        request = _to_request(body, models, served)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return StreamingResponse(_events(batcher, request, body.model, completion_id, include_usage),
                                     media_type="text/event-stream")
        reply = await _whole_reply(batcher, request)
        return JSONResponse({"id": completion_id, "object": "chat.completion", "created": int(time.time()),
                             "model": body.model, "choices": [{"index": 0, "finish_reason": _finish(reply),
                                                               "message": {"role": "assistant", "content": reply.text}}],
                             "usage": _usage(reply)})

    return app


def _to_request(body: ChatCompletionRequest, models: dict[str, ModelChoice], listed: Iterable[str]) -> answering.Request:
    choice = models.get(body.model)
    if choice is None:
        raise ApiError(404, f"The model '{body.model}' is not served here. Served: {', '.join(listed)}.",
                       "model_not_found")
    if body.n != 1:
        raise ApiError(400, "Only n=1 is supported: one answer per request.", "unsupported_parameter")
    messages = [{"role": _ROLES[message.role], "content": message.text()} for message in body.messages]
    if messages[-1]["role"] != "user" or not messages[-1]["content"].strip():
        raise ApiError(400, "The last message must be the user's, with text to answer.", "invalid_messages")
    defaults = choice.generation
    settings = GenerationSection(
        max_new_tokens=body.max_completion_tokens or body.max_tokens or defaults.max_new_tokens,
        temperature=defaults.temperature if body.temperature is None else body.temperature,
        top_p=body.top_p or defaults.top_p, repetition_penalty=defaults.repetition_penalty)
    return answering.Request(messages, choice, settings)


class _Listener:
    """Replies from the batcher's thread, handed to the request's event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Reply | StudioError] = asyncio.Queue()

    def __call__(self, item: Reply | StudioError) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:   # the loop has closed: the server is stopping
            pass


async def _whole_reply(batcher: Batcher, request: answering.Request) -> Reply:
    listener = _Listener()
    ticket = _submit(batcher, request, listener)
    try:
        while True:
            item = await listener.queue.get()
            if isinstance(item, StudioError):
                raise _as_api_error(item)
            if item.finish is not None:
                return item
    finally:
        ticket.cancel()


async def _events(batcher: Batcher, request: answering.Request, model: str, completion_id: str,
                  include_usage: bool) -> AsyncIterator[str]:
    listener = _Listener()
    ticket = _submit(batcher, request, listener)
    created = int(time.time())

    def event(payload: dict[str, Any]) -> str:
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    def chunk(delta: dict[str, str], finish: str | None = None) -> str:
        return event({"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                      "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    try:   # a client that leaves raises CancelledError/GeneratorExit here: its row is stopped below
        yield chunk({"role": "assistant", "content": ""})
        while True:
            item = await listener.queue.get()
            if isinstance(item, StudioError):
                error = _as_api_error(item)
                yield event({"error": {"message": error.message, "type": error.kind, "code": error.code}})
                break
            if item.delta:
                yield chunk({"content": item.delta})
            if item.finish is not None:
                yield chunk({}, _finish(item))
                if include_usage:   # OpenAI's shape: one last chunk with no choices and the usage
                    yield event({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                                 "model": model, "choices": [], "usage": _usage(item)})
                break
        yield "data: [DONE]\n\n"
    finally:
        ticket.cancel()


def _submit(batcher: Batcher, request: answering.Request, listener: _Listener) -> Ticket:
    try:
        return batcher.submit(request, listener)
    except StudioError as error:
        raise _as_api_error(error) from None


def _as_api_error(error: StudioError) -> ApiError:
    if isinstance(error, DeviceBusyError):
        return ApiError(503, str(error), "device_busy", "server_error")
    return ApiError(500, str(error), "generation_failed", "server_error")


def _finish(reply: Reply) -> str:
    return "length" if reply.finish == "length" else "stop"


def _usage(reply: Reply) -> dict[str, int]:
    return {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.tokens,
            "total_tokens": reply.prompt_tokens + reply.tokens}

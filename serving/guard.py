"""ASGI guard in front of the predict routes: refuse what must never reach a parser.

- a body over the limit: 413 (checked on Content-Length, and counted for chunked bodies);
- a POST to a predict route that is not JSON (e.g. a pickle payload): 415.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from serving.settings import ServingSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestGuard:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int | None = None, json_routes: tuple[str, ...] = ("/v1/",)
    ) -> None:
        if max_body_bytes is None:  # built in the worker, so the environment is read there, not at import
            max_body_bytes = ServingSettings().max_body_bytes
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.json_routes = json_routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        content_type, declared = b"", None
        for name, value in scope["headers"]:  # ASGI servers give header names in lower case
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                declared = value.decode("latin-1")
        if scope["path"].startswith(self.json_routes):
            media = content_type.decode("latin-1").split(";")[0].strip().lower()
            if media != "application/json":
                await _error(
                    send, 415, f"content type {media or '(none)'} is not accepted; send application/json"
                )
                return
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await _error(send, 413, f"body of {declared} bytes exceeds the limit of {self.max_body_bytes}")
            return
        if declared is not None:
            await self.app(scope, receive, send)
            return
        # chunked: read it all (up to the limit), then replay it to the app
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _error(send, 413, f"body exceeds the limit of {self.max_body_bytes} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _error(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})

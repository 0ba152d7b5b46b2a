"""A small stand-in for the platform's API gateway, as its code behaves (see
``shared/notes/platform-contract.md``): ``/scheduler/*`` is passed to
``SCHEDULER_SERVICE_URL`` (PhoneFleet's ``/cloudphone``) with the caller's ``Authorization``,
``x-request-id`` and the ``x-user-*`` headers it derives from the JWT; query as is, body only
for POST/PUT/PATCH. A success is HTTP 200 with the upstream body verbatim; an error keeps its
status and becomes ``{statusCode, message, service, timestamp}``. GET/PUT/DELETE are retried up
to 3 times on 5xx/429/408, POST never."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import httpx
import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

RETRIED = {"GET", "PUT", "DELETE"}
RETRY_ON = {408, 429, 500, 502, 503, 504}


def gateway(upstream: httpx.AsyncClient, service_url: str) -> Starlette:
    """The gateway in front of ``upstream`` (a client of PhoneFleet's app)."""

    async def forward(request: Request) -> Response:
        headers = {"x-request-id": request.headers.get("x-request-id") or str(uuid.uuid4())}
        if "authorization" in request.headers:
            headers["authorization"] = request.headers["authorization"]
            claims = jwt.decode(
                request.headers["authorization"].removeprefix("Bearer "),
                options={"verify_signature": False},
            )
            headers["x-user-id"] = str(claims.get("sub", ""))
            headers["x-user-tenant"] = str(claims.get("tenantId", ""))
            roles = json.dumps(claims.get("roles", [])).encode()
            headers["x-user-roles"] = base64.b64encode(roles).decode()
        body = await request.body() if request.method in ("POST", "PUT", "PATCH") else None
        if body:
            headers["content-type"] = "application/json"
        url = f"{service_url}/scheduler/{request.path_params['path']}"
        attempts = 4 if request.method in RETRIED else 1
        for _ in range(attempts):
            answer = await upstream.request(
                request.method, url, params=request.query_params, headers=headers, content=body
            )
            if answer.status_code not in RETRY_ON:
                break
        if answer.status_code < 400:
            return Response(answer.content, status_code=200, media_type="application/json")
        upstream_error = answer.json()
        return JSONResponse(
            {
                "statusCode": answer.status_code,
                "message": upstream_error.get("message", "upstream error"),
                "service": "scheduler-service",
                "timestamp": datetime.now(UTC).isoformat(),
            },
            status_code=answer.status_code,
        )

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return Starlette(routes=[Route("/scheduler/{path:path}", forward, methods=methods)])

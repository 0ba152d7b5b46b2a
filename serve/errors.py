"""One table from domain errors to HTTP statuses, and the problem+json responses."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from scheduler.domain import errors

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

#: Most specific class first; the first match decides the status.
ERROR_STATUS: tuple[tuple[type[errors.SchedulerError], int], ...] = (
    (errors.IdempotencyKeyReused, 422),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.QuotaExceeded, 403),
    (errors.QueueFull, 429),
    (errors.RateLimited, 429),
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.InvalidRequest, 422),
    (errors.InfrastructureError, 503),
)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def status_of(error: errors.SchedulerError) -> int:
    for error_type, status in ERROR_STATUS:
        if isinstance(error, error_type):
            return status
    return 500


def problem(
    status: int,
    code: str,
    detail: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://phonefleet.dev/errors/{code}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update(extra or {})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


async def _scheduler_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.SchedulerError)
    status = status_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    extra = None
    if isinstance(exc, errors.QueueFull):
        headers = {"Retry-After": str(exc.retry_after_seconds)}
    if isinstance(exc, errors.InfrastructureError):
        headers = {"Retry-After": "1"}
    if isinstance(exc, errors.Unsatisfiable):
        extra = {"constraint": exc.constraint}
    if isinstance(exc, errors.ExtensionNotAllowed):
        extra = {"maxAdditionalMinutes": exc.max_additional_minutes}
    if isinstance(exc, errors.ReservationConflict):
        extra = {
            "conflicts": [
                {"deviceId": d, "startTime": s, "endTime": e} for d, s, e in exc.conflicts
            ]
        }
    return problem(status, exc.code, exc.detail, extra, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    if any(
        d["type"] in ("json_invalid", "model_attributes_type")
        and d["loc"][:1] == ["body"]
        and len(d["loc"]) <= 2
        for d in details
    ):
        return problem(
            400, "malformed_json", "the request body is not a JSON object", {"errors": details}
        )
    first = details[0] if details else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"][1:]) or "request"
    return problem(422, "validation_error", f"{where}: {first['msg']}", {"errors": details})


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    return problem(exc.status_code, code, str(exc.detail), headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "internal_error", "an unexpected error occurred")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.SchedulerError, _scheduler_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)

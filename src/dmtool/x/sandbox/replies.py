"""What X answers: a reply (status, JSON body, headers, cost), RFC 7807
problem bodies as X words them, the answers to injected faults, and user
objects with X's not-found errors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dmtool.x.sandbox.params import BadRequest

PROBLEMS = "https://api.twitter.com/2/problems/"

REASONS = {
    200: "OK",
    201: "Created",
    302: "Found",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class Reply:
    """One answer: status, JSON body, extra headers, what it cost, and what to do after."""

    def __init__(
        self,
        status: int,
        body: dict[str, Any] | None,
        *,
        problem: bool = False,
        headers: dict[str, str] | None = None,
        dm_events: int = 0,
        posts: int = 0,
        after: tuple[str, float] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.problem = problem
        self.headers = headers or {}
        self.dm_events = dm_events
        self.posts = posts
        self.after = after


def problem(status: int, title: str, detail: str, type_: str = "about:blank", **extra: Any) -> Reply:
    body: dict[str, Any] = {"title": title, "type": type_, "status": status, "detail": detail}
    body.update(extra)
    return Reply(status, body, problem=True)


def invalid(exc: BadRequest) -> Reply:
    return Reply(
        400,
        {
            "errors": [{"parameters": {exc.parameter: [exc.value]}, "message": exc.message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": PROBLEMS + "invalid-request",
        },
        problem=True,
    )


def fault_reply(fault: dict[str, Any], now: datetime) -> Reply:
    status = int(fault["status"])
    detail = fault.get("detail")
    if status == 429 and fault.get("usage_capped"):
        # Real usage-cap answers carry no `status` member.
        return Reply(
            429,
            {
                "title": "UsageCapExceeded",
                "type": PROBLEMS + "usage-capped",
                "period": "Monthly",
                "scope": "Product",
                "detail": detail or "Usage cap exceeded: Monthly product cap",
            },
            problem=True,
        )
    if status == 429:
        reply = problem(429, "Too Many Requests", detail or "Too Many Requests")
        reply.headers["x-rate-limit-remaining"] = "0"
        reply.headers["x-rate-limit-reset"] = str(int(now.timestamp()) + int(fault["reset_in"]))
        return reply
    if status == 402:
        return Reply(
            402,
            {
                "title": "CreditsDepleted",
                "type": PROBLEMS + "credits",
                "detail": detail
                or ("Your enrolled account does not have any credits to fulfill this request."),
            },
            problem=True,
        )
    titles = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found Error", 400: "Invalid Request"}
    title = titles.get(status, REASONS.get(status, "Error"))
    if status == 403 and detail is None:
        detail = "You are not permitted to perform this action."
    return problem(status, title, detail or title)


def user_json(user: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    out = {"id": user["id"], "name": user["name"], "username": user["username"]}
    if "receives_your_dm" in fields:
        out["receives_your_dm"] = not user.get("dms_closed", False)
    return out


def not_found_user(parameter: str, value: str) -> dict[str, Any]:
    what = {"username": "username", "ids": "ids", "id": "id"}[parameter]
    return {
        "value": value,
        "detail": f"Could not find user with {what}: [{value}].",
        "title": "Not Found Error",
        "resource_type": "user",
        "parameter": parameter,
        "resource_id": value,
        "type": PROBLEMS + "resource-not-found",
    }


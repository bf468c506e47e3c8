"""The web surface: the UI and API behind the gateway (issue 12.4).

Every API route but the two health probes refuses a request without the credentials,
websockets included; the server checks CSRF tokens and allows cross-origin requests from
the UI's own origin only; the gateway refuses an address after too many failed logins;
and the UI still loads and logs in. (No browser here: the UI is checked over HTTP, as
its JavaScript calls the server.)
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import httpx
import pytest
import websockets

from tests.e2e.stack import Stack, poll

# Run on the stack's network, straight to the server (not through the gateway, whose
# failed-login limit this many 401s would trip): every route and method of the API's
# own OpenAPI description, without credentials but with a valid CSRF token (so that a
# state-changing route answers for its authentication, not for the missing token).
# Prints the ones that did not answer 401.
ROUTES_SCRIPT = """
import json, re, urllib.error, urllib.request
routes = json.loads({routes!r})
dummy = "00000000-0000-0000-0000-000000000000"
open_routes = []
for method, path in routes:
    url = "http://prefect-server:4200/api" + re.sub(r"{{[^}}]+}}", dummy, path)
    request = urllib.request.Request(url, method=method, data=b"{{}}"
        if method in ("POST", "PUT", "PATCH") else None,
        headers={{"Content-Type": "application/json", **{csrf!r}}})
    try:
        status = urllib.request.urlopen(request, timeout=10).status
    except urllib.error.HTTPError as error:
        status = error.code
    if status != 401:
        open_routes.append(f"{{method}} {{path}} {{status}}")
print(json.dumps(open_routes))
"""


def _auth(stack: Stack) -> tuple[str, str]:
    user, password = stack.env["PREFECT_AUTH_STRING"].split(":", 1)
    return user, password


@pytest.fixture(scope="module")
def http(stack: Stack):
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.env['PREFECT_PORT']}", timeout=10) as c:
        yield c


def test_every_api_route_but_health_refuses_unauthenticated_requests(stack: Stack, http):
    spec = http.get("/api/openapi.json", auth=_auth(stack), timeout=120)  # built on demand
    assert spec.status_code == 200
    routes = [
        (method.upper(), path)
        for path, methods in spec.json()["paths"].items()
        for method in methods
        if method.upper() in ("GET", "POST", "PUT", "PATCH", "DELETE")
    ]
    assert len(routes) > 150  # the whole API, not a sample
    script = ROUTES_SCRIPT.format(routes=json.dumps(routes), csrf=csrf_headers(stack, http))
    open_routes = stack.in_network(script)
    assert sorted(open_routes) == ["GET /health 200", "GET /ready 200"], open_routes
    # Without the token, a state change is refused before its credentials are looked at.
    assert http.post("/api/flow_runs/filter", json={}).status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "/api/events/out",
        "/api/logs/out",
        "/api/task_runs/subscriptions/scheduled",
        "/api/events/in",
    ],
)
def test_websockets_refuse_connections_without_the_credentials(stack: Stack, path: str):
    url = f"ws://127.0.0.1:{stack.env['PREFECT_PORT']}{path}"

    async def attempt(token: str | None, subprotocol: bool = True) -> str:
        try:
            async with websockets.connect(
                url, subprotocols=["prefect"] if subprotocol else None, open_timeout=10
            ) as socket:
                await socket.send(json.dumps({"type": "auth", "token": token}))
                reply = await asyncio.wait_for(socket.recv(), timeout=10)
                return json.loads(reply)["type"]
        except websockets.ConnectionClosed as closed:
            return f"closed {closed.rcvd.code if closed.rcvd else ''}"
        except websockets.InvalidStatus as refused:
            return f"refused {refused.response.status_code}"

    # Without Prefect's subprotocol (no auth handshake): refused outright.
    assert asyncio.run(attempt(None, subprotocol=False)) in ("refused 403", "closed 1002")
    assert asyncio.run(attempt(None)) == "closed 1008"
    assert asyncio.run(attempt("e2e:wrong")) == "closed 1008"
    assert asyncio.run(attempt(stack.env["PREFECT_AUTH_STRING"])) == "auth_success"


def csrf_headers(stack: Stack, http: httpx.Client) -> dict[str, str]:
    """A CSRF token for a new client id, as Prefect's clients and UI get one."""
    client = str(uuid.uuid4())
    token = http.get("/api/csrf-token", params={"client": client}, auth=_auth(stack))
    assert token.status_code == 200, token.text
    return {"Prefect-Csrf-Token": token.json()["token"], "Prefect-Csrf-Client": client}


def test_state_changes_need_a_csrf_token(stack: Stack, http):
    auth = _auth(stack)
    refused = http.post("/api/flow_runs/filter", json={}, auth=auth)
    assert refused.status_code == 403 and "CSRF" in refused.text
    headers = csrf_headers(stack, http)
    assert http.post("/api/flow_runs/filter", json={}, auth=auth, headers=headers).is_success
    wrong = {**headers, "Prefect-Csrf-Token": "x" * 32}
    assert http.post("/api/flow_runs/filter", json={}, auth=auth, headers=wrong).status_code == 403
    assert http.get(f"/api/deployments/{stack.deployment_id('a')}", auth=auth).is_success


def test_cross_origin_requests_only_from_the_uis_origin(stack: Stack, http):
    ui = f"http://127.0.0.1:{stack.env['PREFECT_PORT']}"
    preflight = {"Access-Control-Request-Method": "POST"}
    evil = http.options(
        "/api/flow_runs/filter", headers={"Origin": "http://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in evil.headers
    own = http.options("/api/flow_runs/filter", headers={"Origin": ui, **preflight})
    assert own.headers.get("access-control-allow-origin") == ui


def test_the_ui_loads_and_logs_in(stack: Stack, http):
    """What the UI's JavaScript does: its settings say basic auth and CSRF; with the
    credentials it reads the API and gets a CSRF token for its changes."""
    page = http.get("/", follow_redirects=True)
    assert page.status_code == 200 and "<html" in page.text.lower()
    for asset in re.findall(r'(?:src|href)="(/[^"]+\.(?:js|css))"', page.text)[:5]:
        assert http.get(asset).status_code == 200, asset
    settings = http.get("/ui-settings").json()
    assert settings["auth"] == "BASIC" and settings["csrf_enabled"] is True
    assert settings["api_url"] == f"http://127.0.0.1:{stack.env['PREFECT_PORT']}/api"
    headers = csrf_headers(stack, http)
    counted = http.post("/api/flows/count", json={}, auth=_auth(stack), headers=headers)
    assert counted.status_code == 200 and counted.json() >= 2


def test_failed_logins_lock_the_address_out_for_a_while(stack: Stack, http):
    """The test stack allows 5 failures in 10 s (MLTOY_LOGIN_*; shipped: 10 in 60 s)."""
    limit = int(stack.env["MLTOY_LOGIN_FAILURES"])
    statuses = [
        http.get("/api/version", auth=("admin", f"guess-{n}")).status_code for n in range(limit + 1)
    ]
    assert statuses == [401] * (limit + 1)
    # Locked: even the right credentials are refused, before reaching the server.
    assert http.get("/api/version", auth=_auth(stack)).status_code == 429
    # ...until the failure rate falls back under the limit.
    poll(
        lambda: http.get("/api/version", auth=_auth(stack)).status_code == 200 or None,
        60,
        "the address to be let in again",
        every=1,
    )

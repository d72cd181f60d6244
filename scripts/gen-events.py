#!/usr/bin/env python3
"""Regenerates events/<function>.json: one API Gateway HTTP API (payload
v2) request per Lambda function, read from the route table
(shared/api/src/routes.rs), for `sam local invoke <Function> -e events/...`.

Run after adding a route: `python3 scripts/gen-events.py`. Every file is
rewritten (other files in events/ are left alone); the output is
deterministic, so a rerun over an unchanged route table changes nothing.
shared/api/tests/events.rs feeds every file to its function's handler,
substituting the placeholders below with real values.

Placeholders (all documented in events/README.md):
- the bearer token of authenticated routes,
- a profile id and a user id (valid ULIDs that name nothing),
- an invitation token and an email-verification token (path segments).
"""
import json
import os
import re
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUTES = open(os.path.join(ROOT, "shared/api/src/routes.rs")).read()
OUT = os.path.join(ROOT, "events")

TOKEN = "PASTE_A_TOKEN_FROM_peak-local_token"
PROFILE_ID = "01JDPEAKSAMP1E0000000000AB"
USER_ID = "01JDPEAKSAMP1EVSER000000AB"
INVITATION_TOKEN = "PASTE_THE_TOKEN_FROM_AN_INVITATION_LINK"
VERIFICATION_TOKEN = "PASTE_THE_TOKEN_FROM_AN_EMAIL_VERIFICATION_LINK"
JOB_ID = "01JDPEAKSAMP1EJ0B0000000AB"

# The value of each path parameter, by route (a parameter's meaning depends
# on the path it is in: `{token}` is an invitation or a verification token).
PARAMS = {
    "/profiles/": {"id": PROFILE_ID},
    "/users/": {"id": USER_ID},
    "/invitations/": {"token": INVITATION_TOKEN},
    "/email-verifications/": {"token": VERIFICATION_TOKEN},
    "/bulk-invites/": {"id": JOB_ID},
}

# Query strings worth showing, by function.
QUERIES = {
    "profile-list": [("limit", "10")],
    "user-list": [("role", "customer"), ("limit", "10")],
    "user-audit": [("limit", "20")],
    "tenant-audit": [("limit", "20")],
    "bulk-invite-create": [("dry_run", "true"), ("file_name", "people.csv")],
}

# Bodies that are not JSON, by function: (content type, text).
RAW_BODIES = {
    "bulk-invite-create": (
        "text/csv",
        "First name,Last name,Email,Role,Profile,Customer accounts\r\n"
        "Jane,Doe,jane.doe@acme.example,customer,Standard,ACME\r\n"
        "Bad,Row,not-an-email,customer,Standard,ACME\r\n",
    ),
}

# JSON bodies, by function (only routes that read one). Written as Python
# dicts and serialised with json.dumps' default separators.
BODIES = {
    "profile-create": {
        "name": "VIP Customers",
        "description": "Customers with every self-service option",
    },
    "profile-update": {
        "settings": {
            "my_subscriptions.cancel": "enabled",
            "pay_invoices.payment_methods": "card",
        }
    },
    "user-invite": {
        "first_name": "Jane",
        "last_name": "Doe",
        "email": "jane.doe@acme.example",
        "role": "customer",
        "profile_id": PROFILE_ID,
        "customer_accounts": ["ACME"],
        "extension_groups": ["billing_manager"],
    },
    "user-update": {
        "last_name": "Doe-Smith",
        "customer_accounts": ["ACME", "ACME-EU"],
    },
    "me-update": {"first_name": "Sam", "last_name": "Sample"},
    "settings-update": {"invitation_ttl_days": 14, "suspension_notice": True},
    "password-reset-request": {
        "tenant": "sample-tenant",
        "email": "customer@sample.example",
    },
    # An Auth0 Event Streams delivery: the login of the sample user was
    # blocked in the Auth0 dashboard (signed Actions deliveries expire after
    # five minutes: see events/auth0/ and scripts/sign-webhook-event.py).
    "auth0-webhook": {
        "id": "evt_sample0000000000000001",
        "source": "urn:auth0:your-tenant.us.auth0.com",
        "specversion": "1.0",
        "type": "user.updated",
        "time": "2026-11-23T14:00:00.000Z",
        "data": {"object": {
            "user_id": "auth0|target",
            "email": "target@sample.example",
            "email_verified": True,
            "blocked": True,
            "app_metadata": {"tenant": "sample-tenant"},
        }},
    },
}

# Credentials of routes that authenticate without a user's token.
EXTRA_HEADERS = {
    "auth0-webhook": {
        "authorization": "Bearer SAMPLE_EVENT_STREAM_TOKEN_set_AUTH0_EVENT_STREAM_TOKENS_to_it",
    },
}


def routes():
    """(route, method, path, function, authenticated, creates), in table order."""
    pattern = (r'(public\()?(creates\()?route\(\s*Route::(\w+),\s*Method::(\w+),'
               r'\s*"([^"]+)",\s*"([^"]+)",?\s*\)')
    return [(route, method, path, fn, not pub, bool(cr))
            for pub, cr, route, method, path, fn in re.findall(pattern, ROUTES)]


def path_params(path):
    names = re.findall(r"\{(\w+)\}", path)
    if not names:
        return {}
    for prefix, values in PARAMS.items():
        if path.startswith(prefix):
            missing = [n for n in names if n not in values]
            if missing:
                raise SystemExit(f"{path}: no sample value for {missing}")
            return {n: values[n] for n in names}
    raise SystemExit(f"{path}: no sample path parameters (add it to PARAMS)")


def event(method, path, fn, authenticated, creates):
    params = path_params(path)
    raw_path = path
    for name, value in params.items():
        raw_path = raw_path.replace("{" + name + "}", value)
    query = QUERIES.get(fn, [])
    body = BODIES.get(fn)
    if body is None and method in ("PATCH",):
        raise SystemExit(f"{fn}: a PATCH needs a sample body (add it to BODIES)")

    headers = {"accept": "application/json"}
    if authenticated:
        headers["authorization"] = f"Bearer {TOKEN}"
    headers["user-agent"] = "curl/8.5.0"
    headers["x-forwarded-proto"] = "https"
    headers["host"] = "api.example.com"
    headers.update(EXTRA_HEADERS.get(fn, {}))
    if body is not None:
        headers["content-type"] = "application/json"
    if method == "PATCH":
        headers["if-match"] = '"1"'
    if creates:
        # Deterministic, so a rerun changes nothing; a client sends a fresh
        # UUID per logical request.
        headers["idempotency-key"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"peak-users:events/{fn}"))

    route_key = f"{method} {path}"
    ev = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in query),
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "peakapi",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.10",
                "userAgent": "curl/8.5.0",
            },
            "requestId": f"sample-{fn}",
            "routeKey": route_key,
            "stage": "$default",
            "time": "23/Nov/2026:14:00:00 +0000",
            "timeEpoch": 1795442400000,
        },
        "isBase64Encoded": False,
    }
    if query:
        ev["queryStringParameters"] = dict(query)
    if params:
        ev["pathParameters"] = params
    if body is not None:
        ev["body"] = json.dumps(body)
    if fn in RAW_BODIES:
        content_type, text = RAW_BODIES[fn]
        ev["headers"]["content-type"] = content_type
        ev["body"] = text
    return ev


def main():
    table = routes()
    if not table:
        raise SystemExit("no routes found in shared/api/src/routes.rs")
    unknown = set(BODIES) | set(QUERIES) | set(EXTRA_HEADERS) | set(RAW_BODIES)
    seen = set()
    for _route, method, path, fn, authenticated, creates in table:
        if fn in seen:
            raise SystemExit(f"{fn} serves more than one route: one event per function")
        seen.add(fn)
        text = json.dumps(event(method, path, fn, authenticated, creates), indent=2) + "\n"
        with open(os.path.join(OUT, f"{fn}.json"), "w") as fh:
            fh.write(text)
    stale = unknown - seen
    if stale:
        raise SystemExit(f"sample bodies or queries for unknown functions: {sorted(stale)}")
    print(f"{len(seen)} events")


if __name__ == "__main__":
    main()

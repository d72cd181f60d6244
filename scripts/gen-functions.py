#!/usr/bin/env python3
"""Regenerates functions/src/bin/*.rs and the function resources of
infra/template.yaml from the route table (shared/api/src/routes.rs).

Run after adding a route: `python3 scripts/gen-functions.py`. The template's
Parameters, Globals, Table and Outputs are left as they are; everything from
the `# HTTP API` marker to `Outputs:` is rewritten. functions/src/tests/template.rs
checks the result stays equal to the route table.
"""
import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUTES = open(os.path.join(ROOT, "shared/api/src/routes.rs")).read()

DOCS = {
    "profile-catalogue": "the profile settings catalogue (seven tabs and extension groups)",
    "profile-list": "a page of the tenant's profiles",
    "profile-create": "a new profile, every setting at its default",
    "profile-get": "one profile, read-only view",
    "profile-update": "an edit of a profile, guarded by If-Match",
    "profile-delete": "deletion of a profile no user holds",
    "user-list": "list and search users",
    "user-invite": "invite one user (Idempotency-Key honoured)",
    "user-get": "one user",
    "user-update": "edit a user (If-Match required)",
    "user-delete": "delete a user and their personal data",
    "user-suspend": "suspend a user (refused by the API at once)",
    "user-enable": "enable a suspended user",
    "user-password-reset": "queue a password-reset email for a user",
    "invitation-resend": "resend an invitation (new link, old one dead)",
    "invitation-revoke": "revoke an invitation",
    "user-audit": "a user's audit trail",
    "tenant-audit": "the tenant's recent audit events",
    "settings-get": "the tenant's settings (admins)",
    "settings-update": "a change of the tenant's settings (admins, If-Match, audited)",
    "me-get": "the signed-in user's own record and permissions",
    "me-update": "the signed-in user's name and login email",
    "me-password-reset": "the signed-in user's own password reset",
    "invitation-view": "what an invitation link shows (does not consume it)",
    "invitation-accept": "accepting an invitation",
    "email-verification-view": "what an email-verification link shows",
    "email-verification-confirm": "confirming a new login email",
    "password-reset-request": "the signed-out 'forgot password' request",
    "openapi": "the OpenAPI 3.1 document",
    "auth0-webhook": "deliveries from Auth0 (signed Actions events, Event Streams)",
    "bulk-invite-template": "the CSV template for bulk invites",
    "bulk-invite-upload": "a presigned S3 URL for a large bulk-invite file",
    "bulk-invite-create": "a bulk-invite upload (a dry run, or a queued job)",
    "bulk-invite-get": "a bulk invite's status and progress",
    "bulk-invite-report": "a finished bulk invite's report (CSV)",
}

# Hand-written binaries (event-driven workers, not routes): kept as they are.
WORKERS = {"mailer", "mailer-sweeper", "auth0-worker", "auth0-sweeper", "auth0-reconcile",
           "bulk-runner"}

# What a function needs to call the Auth0 Management API. The client secret
# (and the webhook's secrets) are read from Secrets Manager when the
# function starts (functions/src/secrets.rs): the environment holds only the
# secret's id, and the function may read that one secret.
AUTH0_ENV = """          AUTH0_DOMAIN: !Ref Auth0Domain
          AUTH0_CLIENT_ID: !Ref Auth0ClientId
          AUTH0_SECRET_ID: !Ref Auth0SecretId
          AUTH0_CONNECTION: !Ref Auth0Connection
          AUTH0_PORTAL_CLIENT_ID: !Ref Auth0PortalClientId
"""
WEBHOOK_ENV = ""
SECRET_POLICY = """            - Effect: Allow
              Action:
                - secretsmanager:GetSecretValue
              Resource:
                - !Sub "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${Auth0SecretId}-??????"
"""
BULK_ENV = """          BULK_BUCKET: !Ref BulkBucket
"""
# The functions that answer a browser with a page draw it in the tenant's
# brand (the emails' brands: a page looks like the email that led to it).
BRANDS_ENV = """          EMAIL_BRANDS: !Ref EmailBrands
"""
ENV = {
    "invitation-view": BRANDS_ENV,
    "invitation-accept": BRANDS_ENV + AUTH0_ENV,
    "email-verification-view": BRANDS_ENV,
    "email-verification-confirm": BRANDS_ENV,
    "auth0-webhook": AUTH0_ENV + WEBHOOK_ENV,
    "bulk-invite-upload": BULK_ENV,
    "bulk-invite-create": BULK_ENV,
}

# S3 access beyond the table: only the bulk prefix, only the verbs used
# (a presigned PUT is signed with the function's own permission).
S3_POLICY = {
    "bulk-invite-upload": ["s3:PutObject"],
    "bulk-invite-create": ["s3:GetObject", "s3:PutObject"],
}

READ = ["dynamodb:GetItem"]
WRITE = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
         "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"]
QUERY = ["dynamodb:Query"]
ACTIONS = {
    "openapi": [],
    "profile-catalogue": READ, "profile-get": READ, "user-get": READ, "me-get": READ,
    # The invitation page names the inviter: the audit trail says who.
    "invitation-view": READ + QUERY, "email-verification-view": READ,
    "profile-list": READ + QUERY, "user-list": READ + QUERY,
    "user-audit": READ + QUERY, "tenant-audit": READ + QUERY,
    "settings-get": READ,
    "user-delete": WRITE + QUERY,
    "bulk-invite-template": READ, "bulk-invite-get": READ,
    "bulk-invite-report": READ + QUERY, "bulk-invite-upload": READ,
    "bulk-invite-create": WRITE + QUERY,
}


def s3_policy(acts):
    return "".join([
        "            - Effect: Allow\n              Action:\n",
        "".join(f"                - {a}\n" for a in acts),
        '              Resource:\n                - !Sub "${BulkBucket.Arn}/bulk/*"\n',
    ])


def policies(acts, s3=None, secret=False):
    return """      Policies:
        - Statement:
""" + (SECRET_POLICY if secret else "") + """            - Effect: Allow
              Action:
""" + "".join(f"                - {a}\n" for a in acts) + """              Resource:
                - !GetAtt Table.Arn
""" + ('                - !Sub "${Table.Arn}/index/*"\n' if "dynamodb:Query" in acts else "") + (s3_policy(s3) if s3 else "")


def routes():
    pattern = r'(public\()?(creates\()?route\(\s*Route::(\w+),\s*Method::(\w+),\s*"([^"]+)",\s*"([^"]+)",?\s*\)'
    out = {}
    for pub, _cr, route, method, path, fn in re.findall(pattern, ROUTES):
        out.setdefault(fn, []).append((route, method, path, not pub))
    return out


def bin_source(fn, routes):
    """A function's main: its routes' handlers only (peak_api::dispatch), and
    the S3 file store / Auth0 client only where the template gives the
    function their settings, so the linker leaves the rest out."""
    files = "s3_files" if fn in S3_POLICY else "no_files"
    idp = "identity_provider_from_env" if "AUTH0_DOMAIN" in ENV.get(fn, "") else "no_identity_provider"
    pairs = "".join(f"        (Route::{r}, dispatch::{r}),\n" for r in routes)
    return f"""//! Lambda `{fn}`: {DOCS[fn]}.

use peak_api::{{Handler, Route, dispatch}};
use peak_functions::{{Ports, {files}, {idp}}};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {{
    let routes: &[(Route, Handler)] = &[
{pairs}    ];
    let ports = Ports {{
        files: {files},
        idp: {idp},
    }};
    peak_functions::run("{fn}", routes, ports).await
}}
"""


BIN_MARK = "# Binaries (generated by scripts/gen-functions.py)"


def write_bin_targets(names):
    """Every binary declared with `test = false`: cargo would otherwise link
    each one twice more for `cargo test` (a unit-test harness, plus the binary
    itself for the package's integration tests), ~2.5 GB of debug builds."""
    path = os.path.join(ROOT, "functions/Cargo.toml")
    s = open(path).read()
    s = s[: s.index(BIN_MARK)] if BIN_MARK in s else s.rstrip("\n") + "\n\n"
    s += BIN_MARK + "\n"
    for n in names:
        s += f'\n[[bin]]\nname = "{n}"\npath = "src/bin/{n}.rs"\ntest = false\n'
    open(path, "w").write(s)


# Public routes (no token: invitation and verification links, the signed-out
# reset, Auth0's webhook, the OpenAPI document) are throttled per route, and
# their functions get reserved concurrency: anyone on the internet can call
# them, and junk traffic must neither cost unbounded Lambda time nor take the
# account's concurrency from the authenticated routes. Auth0's webhook has
# its own limits (it is sent in bursts and retried on 429).
def throttle(fn):
    kind = "Webhook" if fn == "auth0-webhook" else "PublicRoute"
    return (f"ThrottlingBurstLimit: !Ref {kind}ThrottleBurstLimit\n",
            f"ThrottlingRateLimit: !Ref {kind}ThrottleRateLimit\n")


def route_settings(funcs):
    out = ""
    for fn, rs in funcs.items():
        for _route, method, path_, auth in rs:
            if not auth:
                burst, rate = throttle(fn)
                out += f'        "{method} {path_}":\n          {burst}          {rate}'
    return out


def main():
    funcs = routes()
    bindir = os.path.join(ROOT, "functions/src/bin")
    for f in os.listdir(bindir):
        if f[: -len(".rs")] not in WORKERS:
            os.remove(os.path.join(bindir, f))
    for fn, rs in funcs.items():
        with open(os.path.join(bindir, f"{fn}.rs"), "w") as fh:
            fh.write(bin_source(fn, [r[0] for r in rs]))
    # As `cargo fmt` would leave them, so regenerating changes nothing.
    subprocess.run(["rustfmt", "--edition", "2024"]
                   + [os.path.join(bindir, f"{fn}.rs") for fn in funcs], check=True)
    write_bin_targets(sorted(set(funcs) | WORKERS))
    path = os.path.join(ROOT, "infra/template.yaml")
    s = open(path).read()
    start = s.index("  # HTTP API")
    end = s.index("\nOutputs:\n")
    out = """  # HTTP API with Auth0 as the JWT authorizer on every authenticated route;
  # public routes (invitation and verification links, the signed-out reset)
  # opt out with Authorizer: NONE. Portal frontends call it from their own
  # origins (PortalOrigins); API Gateway answers their preflights itself.
  # The CORS lists equal peak_api::cors (a template test checks).
  # Generated: scripts/gen-functions.py.
  #
  # Throttling: every route shares the stage's limits (DefaultRouteSettings,
  # below the account's); each public route, which anyone can call without a
  # token, has its own much lower limits (RouteSettings), and its function a
  # reserved concurrency (PublicFunctionConcurrency), so a flood of junk on
  # one of them gets 429s from API Gateway and cannot use up the Lambda
  # concurrency the authenticated routes need.
  HttpApi:
    Type: AWS::Serverless::HttpApi
    Properties:
      StageName: $default
      CorsConfiguration:
        AllowOrigins: !Ref PortalOrigins
        AllowMethods: [GET, POST, PATCH, DELETE]
        AllowHeaders: [authorization, content-type, if-match, idempotency-key]
        ExposeHeaders: [etag, location, x-request-id, retry-after]
        MaxAge: 600
        AllowCredentials: false
      DefaultRouteSettings:
        ThrottlingBurstLimit: !Ref ApiThrottleBurstLimit
        ThrottlingRateLimit: !Ref ApiThrottleRateLimit
      RouteSettings:
""" + route_settings(funcs) + """      Auth:
        DefaultAuthorizer: Auth0
        Authorizers:
          Auth0:
            IdentitySource: $request.header.Authorization
            JwtConfiguration:
              issuer: !Ref Auth0Issuer
              audience:
                - !Ref Auth0Audience
"""
    for fn, rs in funcs.items():
        res = "".join(w.capitalize() for w in fn.split("-")) + "Function"
        acts = ACTIONS.get(fn, WRITE)
        out += f"""
  {res}:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties:
        Binary: {fn}
    Properties:
      FunctionName: !Sub peak-users-${{Stage}}-{fn}
      Description: {DOCS[fn]}
""" + ("" if all(r[3] for r in rs) else """      ReservedConcurrentExecutions: !If
        - LimitPublicConcurrency
        - !Ref PublicFunctionConcurrency
        - !Ref AWS::NoValue
""") + (f"      Environment:\n        Variables:\n{ENV[fn]}" if fn in ENV else "") + (policies(acts, S3_POLICY.get(fn), "AUTH0_DOMAIN" in ENV.get(fn, "")) if acts else "      # Serves a document built into the binary: no AWS access at all.\n") + """      Events:
"""
        for route, method, path_, auth in rs:
            out += f"""        {route}:
          Type: HttpApi
          Properties:
            ApiId: !Ref HttpApi
            Method: {method}
            Path: {path_}
""" + ("" if auth else """            Auth:
              Authorizer: NONE
""")
    s = s[:start] + out + s[end:]
    open(path, "w").write(s)
    print(f"{len(funcs)} functions")


if __name__ == "__main__":
    main()

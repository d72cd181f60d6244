#!/usr/bin/env python3
"""The scale model and the monthly cost estimate of issue 18 (docs/scale.md).

Reads what was measured and what is deployed, never assumes them:
  - docs/capacity.json: read/write units and calls per operation, measured
    on DynamoDB Local by tests/tests/e2e/store_calls.rs (which pins them);
  - infra/template.yaml: memory, timeouts, throttles, reserved concurrency,
    the SES and Auth0 rates, the sweepers' schedules, the stream batch sizes;
  - the code's own bounds (sweeper batches and margins, the filtered-read
    bound, the password-reset padding, the mailer's attempts);
  - the README's table of Auth0 plans (reused, not copied).
Everything else is a scenario input (command-line flags) or an assumption
named in ASSUMED below and printed in the document.

  scripts/scale-model.py                 # print the document
  scripts/scale-model.py --write         # rewrite docs/scale.md
  scripts/scale-model.py --check         # fail if docs/scale.md or the
                                         # README's capacity cells drifted
  scripts/scale-model.py --users 2000000 --bulk 250000 --auth0-rps 16

Standard library only.
"""

import argparse
import json
import math
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "scale.md"

# Assumptions: not measured here, not in the template or code. Each is
# printed in the document with its source.
ASSUMED = {
    "round_trip_ms": (6.0, "one DynamoDB request from Lambda, same region (the e2e tests inject 5 ms)"),
    "handler_overhead_ms": (3.0, "CPU per request beside the waits: routing, JWT, JSON (benchmarks: 25-75 us; 3 ms covers runtime overhead)"),
    "user_item_bytes": (1100, "a user item, measured by scanning the capacity test's table: 965-1,146 bytes"),
    "profile_item_bytes": (1313, "a profile item, measured the same way"),
    "partition_rcu": (3000, "AWS: read units per second one partition (or one item) serves"),
    "partition_wcu": (1000, "AWS: write units per second one partition serves"),
    "holder_tx_conflicts_per_s": (40, "issue 18: transactions on one item start conflicting at ~30-50/s"),
    "account_concurrency": (1000, "AWS Lambda's default regional concurrency quota"),
    "stream_shards": (4, "DynamoDB stream shards of the table (grows with its partitions)"),
    "stream_retention_h": (24, "AWS: a DynamoDB stream keeps records 24 hours"),
    "auth0_calls_per_push": (1, "a rename/email sync; a suspension is 3 (README)"),
    "page_size": (25, "the default page a filtered list fills"),
    "filter_selectivity": (0.001, "share of a tenant's users a role+status filter matches"),
    "logins_per_user_day": (1, "recorded sign-ins per user per day"),
}

# Public prices, us-east-1, as of 2025 (AWS's public price pages, from
# memory: assumptions, check before quoting).
PRICES = {
    "ddb_wru_per_m": 0.625,  # on-demand, per million write request units
    "ddb_rru_per_m": 0.125,  # on-demand, per million read request units
    "ddb_storage_gb": 0.25,  # per GB-month
    "ddb_wcu_hour": 0.00065,  # provisioned, per WCU-hour
    "ddb_rcu_hour": 0.00013,  # provisioned, per RCU-hour
    "lambda_req_per_m": 0.20,
    "lambda_gb_s_arm64": 0.0000133334,
    "lambda_gb_s_x86": 0.0000166667,
    "apigw_http_per_m_first_300m": 1.00,
    "apigw_http_per_m_after": 0.90,
    "logs_ingest_gb": 0.50,
    "logs_store_gb_month": 0.03,
}

# The cost scenario's request mix: which measured operation stands for each
# share of the 20 requests a user makes a day (assumed).
MIX = [
    ("`GET /profile-catalogue` (sales rep)", 0.45, "a portal user's own read (sign-in + profile)"),
    ("`GET /me` (admin)", 0.20, "the caller's own record"),
    ("`GET /users/{id}` (admin)", 0.15, "one user"),
    ("`GET /users?limit=10` (admin)", 0.15, "a list page"),
    ("`PATCH /users/{id}` (admin)", 0.04, "an edit"),
    ("`POST /users` (invite, admin)", 0.01, "an invite"),
]

# Log bytes per request (assumed from the formats: the access-log format in
# the template, one JSON `request` line per request, Lambda's JSON
# platform.start and platform.report lines at SystemLogLevel INFO).
LOG_BYTES = {"access": 330, "app": 300, "platform": 700}


def fail(msg):
    sys.exit(f"scale-model: {msg}")


# ---------------------------------------------------------------- inputs

def template_text():
    return (ROOT / "infra" / "template.yaml").read_text()


def block(text, name, indent=2):
    """The lines of the YAML mapping entry `name` at `indent` spaces."""
    lines = text.splitlines()
    head = " " * indent + name + ":"
    for i, line in enumerate(lines):
        if line.rstrip() == head:
            out = []
            for nxt in lines[i + 1:]:
                if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                    break
                out.append(nxt)
            return "\n".join(out)
    fail(f"infra/template.yaml has no {name}")


def prop(text, key):
    m = re.search(rf"^\s+{key}: (.+)$", text, re.M)
    if not m:
        fail(f"no {key}")
    return m.group(1).strip()


def rate_minutes(text):
    m = re.search(r"Schedule: rate\((\d+) minutes?\)", text)
    return int(m.group(1))


def const(path, name, pattern=r"([0-9_]+)"):
    src = (ROOT / path).read_text()
    m = re.search(rf"{name}[^=\n]*?[=:]\s*{pattern}", src)
    if not m:
        fail(f"{path} has no {name}")
    return m.group(1)


def duration_secs(path, name):
    src = (ROOT / path).read_text()
    m = re.search(rf"{name}[^=\n]*?[=:]\s*(?:std::time::)?Duration::from_(secs|millis)\((\d+)\)", src)
    if not m:
        fail(f"{path} has no {name}")
    return int(m.group(2)) / (1000 if m.group(1) == "millis" else 1)


def settings():
    t = template_text()
    params = block(t, "Parameters", 0)
    globals_ = block(t, "Globals", 0)
    default = lambda p: float(prop(block(params, p, 2), "Default"))  # noqa: E731
    fn = lambda r: block(t, r)  # noqa: E731
    s = {
        "memory_mb": int(prop(globals_, "MemorySize")),
        "timeout_s": int(prop(globals_, "Timeout")),
        "architecture": prop(block(params, "Architecture"), "Default"),
        "auth0_rps": default("Auth0MaxRps"),
        "ses_rate": default("SesMaxSendRate"),
        "api_rate": default("ApiThrottleRateLimit"),
        "public_rate": default("PublicRouteThrottleRateLimit"),
        "public_burst": default("PublicRouteThrottleBurstLimit"),
        "public_concurrency": default("PublicFunctionConcurrency"),
        "public_functions": t.count("ReservedConcurrentExecutions:"),
        "mailer_sweeper_timeout": int(prop(fn("MailerSweeperFunction"), "Timeout")),
        "mailer_sweeper_every_min": rate_minutes(fn("MailerSweeperFunction")),
        "auth0_sweeper_timeout": int(prop(fn("Auth0SweeperFunction"), "Timeout")),
        "auth0_sweeper_every_min": rate_minutes(fn("Auth0SweeperFunction")),
        "runner_timeout": int(prop(fn("BulkRunnerFunction"), "Timeout")),
        "mailer_batch_size": int(prop(fn("MailerFunction"), "BatchSize")),
        "log_retention_days": int(prop(fn("HttpApiAccessLogGroup"), "RetentionInDays")),
        # The code's bounds.
        "mailer_sweep_batch": int(const("functions/src/bin/mailer-sweeper.rs", "const BATCH")),
        "mailer_sweep_margin": duration_secs("functions/src/bin/mailer-sweeper.rs", "BATCH_MARGIN"),
        "auth0_sweep_batch": int(const("shared/idp-sync/src/worker.rs", "batch")),
        "auth0_sweep_margin": duration_secs("shared/idp-sync/src/worker.rs", "batch_margin"),
        "filtered_bound": int(const("shared/store-dynamodb/src/users.rs", "FILTERED_READ_BOUND").replace("_", "")),
        "filtered_batch": int(const("shared/store-dynamodb/src/users.rs", "FILTERED_BATCH")),
        "reset_floor_s": duration_secs("shared/api/src/handlers/public.rs", "FLOOR"),
        "mailer_attempts": int(const("shared/mailer/src/mailer.rs", "max_attempts", r"(\d+)")),
        "runner_stop_before": duration_secs("functions/src/bin/bulk-runner.rs", "STOP_BEFORE_DEADLINE"),
        "chunk_rows": int(const("shared/bulk-jobs/src/lib.rs", "CHUNK_ROWS")),
    }
    # Wall 6's sharded pending keys, once merged: the shard count the code
    # names (1 = one partition, as before).
    shards = 1
    for p in (ROOT / "shared" / "store-dynamodb" / "src").glob("*.rs"):
        m = re.search(r"PENDING_SHARDS[^=\n]*=\s*(\d+)", p.read_text())
        if m:
            shards = int(m.group(1))
    s["pending_shards"] = shards
    return s


def auth0_plans():
    """The README's table of Auth0 plans: (plan, requests/s)."""
    readme = (ROOT / "README.md").read_text()
    sec = readme.split("Accepts per second each plan allows", 1)[1].split("\n\n", 2)[1]
    plans = []
    for row in sec.splitlines()[2:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        plans.append((cells[0], float(cells[1].split()[0])))
    return plans


def capacity():
    return json.loads((ROOT / "docs" / "capacity.json").read_text())


def units(entry, kind):
    return sum(entry[kind].values())


# ---------------------------------------------------------------- the model

def fmt(x, digits=0):
    if x is None:
        return "–"
    if x == math.inf:
        return "never"
    if abs(x) >= 100 or digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def hours(h):
    if h == math.inf:
        return "never"
    if h < 1:
        return f"{h * 60:.0f} min"
    if h < 48:
        return f"{h:.1f} h"
    return f"{h / 24:.1f} days"


def walls(a, s, cap):
    """Each wall: (name, before, after, scenario load, utilisation before,
    after, where it bites before → after)."""
    A = {k: v[0] for k, v in ASSUMED.items()}
    rt = A["round_trip_ms"] / 1000
    out = []

    # 1. Accepts: Auth0 calls per accept, one budget shared by instances.
    demand = a.bulk * a.accept_share / 3600
    cap_b, cap_a = a.auth0_rps / 3, a.auth0_rps / 2
    out.append((
        "1 accepts (Auth0 calls)",
        f"3 calls/accept: {fmt(cap_b, 2)} accepts/s, each instance its own pace (429s)",
        f"2 calls/accept, one budget of {fmt(a.auth0_rps)} req/s: {fmt(cap_a, 2)} accepts/s",
        f"{fmt(demand, 2)} accepts/s ({a.accept_share:.0%} of {a.bulk:,} in the peak hour)",
        demand / cap_b, demand / cap_a,
        f"bulk of {fmt(cap_b * 3600 / a.accept_share)} → {fmt(cap_a * 3600 / a.accept_share)} rows",
    ))

    # 2. Sweepers: owed Auth0 pushes that failed once (the stream's 24 h).
    per_run_b = s["auth0_sweep_batch"]
    runs_h = 60 / s["auth0_sweeper_every_min"]
    busy = s["auth0_sweeper_timeout"] - s["auth0_sweep_margin"]
    cpp = A["auth0_calls_per_push"]
    rate_b = per_run_b * runs_h  # pushes/hour
    rate_a = min(a.auth0_rps * busy / cpp, math.inf) * runs_h
    owed = a.bulk
    out.append((
        "2 owed Auth0 work (sweeper)",
        f"one batch of {per_run_b} per {s['auth0_sweeper_every_min']}-min run: {fmt(rate_b)}/h",
        f"batches until {fmt(s['auth0_sweep_margin'])} s before the {s['auth0_sweeper_timeout']} s timeout "
        f"at the Auth0 budget: {fmt(rate_a)}/h",
        f"{owed:,} pushes owed",
        (owed / rate_b) / A["stream_retention_h"], (owed / rate_a) / A["stream_retention_h"],
        f"{fmt(rate_b * A['stream_retention_h'])} → {fmt(rate_a * A['stream_retention_h'])} pushes drained "
        f"within the stream's {A['stream_retention_h']} h",
    ))

    # 3. SES: per-instance rate (instances = stream shards) vs one budget.
    shards = A["stream_shards"]
    throttled = 1 - 1 / shards
    lost = throttled ** s["mailer_attempts"]
    out.append((
        "3 SES send rate",
        f"{fmt(s['ses_rate'])}/s per mailer instance × {shards} shards; a throttled send spends one of "
        f"{s['mailer_attempts']} attempts: ≈ {lost:.1%} of a burst's emails failed for good",
        f"one budget of {fmt(s['ses_rate'])}/s for every instance; a throttled send is put back, never failed",
        f"{a.bulk:,} invitation emails",
        shards, (a.bulk / s["ses_rate"] / 3600) / 24,
        f"any burst over {fmt(s['ses_rate'])}/s → none (the outbox drains in "
        f"{hours(a.bulk / s['ses_rate'] / 3600)})",
    ))

    # 4. Filtered searches.
    item_kb = A["user_item_bytes"] / 1024
    read_b = min(a.users, A["page_size"] / A["filter_selectivity"])
    read_a = min(read_b, s["filtered_bound"])
    rcu = lambda items: items * item_kb / 4 * 0.5  # noqa: E731 (eventually consistent)
    secs = lambda items: math.ceil(items / s["filtered_batch"]) * rt  # noqa: E731
    # Searches a second one index partition serves.
    per_s = lambda items: A["partition_rcu"] / rcu(items)  # noqa: E731
    out.append((
        "4 filtered user search",
        f"reads until {A['page_size']} match: {fmt(read_b)} items, {fmt(rcu(read_b))} RCU, "
        f"{secs(read_b):.1f} s (timeout {s['timeout_s']} s)",
        f"reads at most {fmt(s['filtered_bound'])} items: {fmt(rcu(read_a))} RCU, {secs(read_a):.2f} s, "
        f"a short page with a cursor",
        f"{fmt(a.searches)} search(es)/s at selectivity {A['filter_selectivity']:.1%} in {a.users:,} users",
        max(secs(read_b) / s["timeout_s"], a.searches / per_s(read_b)),
        max(secs(read_a) / s["timeout_s"], a.searches / per_s(read_a)),
        f"{fmt(per_s(read_b), 1)} → {fmt(per_s(read_a), 1)} searches/s saturate a "
        f"{fmt(A['partition_rcu'])}-RCU index partition",
    ))

    # 5. Dry runs: one read per row, in sequence, inside one request.
    rows_b = s["timeout_s"] / rt
    usable = s["runner_timeout"] - s["runner_stop_before"]
    out.append((
        "5 dry runs",
        f"in the request: 1 read per row at {A['round_trip_ms']:.0f} ms in {s['timeout_s']} s",
        f"as jobs in the bulk runner ({usable:.0f} s per run, checkpoint per {s['chunk_rows']} rows, resumed)",
        f"{a.bulk:,} rows: {hours(a.bulk * rt / 3600)} of reads",
        a.bulk / rows_b, 0.0,
        f"{fmt(rows_b)} rows → none (a request only stores the file; the runner checks)",
    ))

    # 6. Hot items: the pending-work index partition, the profile item.
    # A bulk job's rows a second: its measured calls per row, one after another.
    job = cap["bulk invite job of 100 rows"]
    job_rows_s = 1 / (sum(job["calls"].values()) / 100 * rt)
    pending_wcu_per_row = 2 * math.ceil(600 / 1024) + 1  # the outbox entry in a tx, its removal
    jobs_b = A["partition_wcu"] / (job_rows_s * pending_wcu_per_row)
    jobs_a = jobs_b * s["pending_shards"]
    req_s_per_user = a.requests_per_day / 86400 * a.peak
    profile_rcu = math.ceil(A["profile_item_bytes"] / 4096)
    users_per_profile = A["partition_rcu"] / (req_s_per_user * profile_rcu)
    conflict_jobs = A["holder_tx_conflicts_per_s"] / job_rows_s
    # Still in every user transaction while the user write names it.
    holder_hot = "holder_count" in (ROOT / "shared/store-dynamodb/src/user_write.rs").read_text()
    jobs_after = min(jobs_a, conflict_jobs) if holder_hot else jobs_a
    out.append((
        "6 hot items",
        f"all tenants' pending outbox/owed work in 1 index partition; profile holder count in every "
        f"user transaction (conflicts past ~{A['holder_tx_conflicts_per_s']} tx/s)",
        f"pending keys in {s['pending_shards']} shard(s); holder count "
        f"{'still in every user transaction' if holder_hot else 'off the hot path: 8 holder shards'} "
        f"(both read from the code)",
        f"{a.jobs} bulk job(s) at ≈ {fmt(job_rows_s)} rows/s each; {a.users:,} users on one profile",
        max(a.jobs / jobs_b, a.jobs / conflict_jobs, a.users / users_per_profile),
        max(a.jobs / jobs_after, a.users / users_per_profile),
        f"{fmt(min(jobs_b, conflict_jobs), 1)} → {fmt(jobs_after, 1)} concurrent imports on one profile "
        f"(the pending partition alone: {fmt(jobs_b, 1)} → {fmt(jobs_a, 1)}); the profile read "
        f"at {fmt(users_per_profile)} holders",
    ))

    # 7. Write amplification of a sign-in.
    user_w = math.ceil(A["user_item_bytes"] / 1024)
    login_b = user_w * (1 + 5)  # the user item and its 5 index copies
    login_a = 2 * 2  # a transaction of 2 small actions (ConditionCheck + Update)
    mix_w = sum(share * units(cap[op], "write_units_aws") for op, share, _ in MIX if op in cap)
    day_b = a.requests_per_day * mix_w + A["logins_per_user_day"] * login_b
    day_a = a.requests_per_day * mix_w + A["logins_per_user_day"] * login_a
    out.append((
        "7 sign-in write amplification",
        f"rewrites the user item and its 5 index copies: {login_b} WCU per sign-in",
        f"own small item, in no index: {login_a} WCU (a transaction of 2)",
        f"{A['logins_per_user_day']} sign-in per user per day",
        A["logins_per_user_day"] * login_b / day_b, A["logins_per_user_day"] * login_a / day_a,
        f"{A['logins_per_user_day'] * login_b / day_b:.0%} → {A['logins_per_user_day'] * login_a / day_a:.0%} "
        f"of the write units (share, not a limit)",
    ))

    # 8. Public routes.
    floor = s["reset_floor_s"]
    junk_b = A["account_concurrency"] / floor
    held_a = min(s["public_rate"] * floor + s["public_burst"] * floor, s["public_concurrency"])
    out.append((
        "8 public routes",
        f"no throttle, no cap: each junk reset holds a function {floor:.2f} s",
        f"{fmt(s['public_rate'])} req/s (burst {fmt(s['public_burst'])}) per public route, "
        f"reserved concurrency {fmt(s['public_concurrency'])} for each of {s['public_functions']} functions",
        f"{a.junk_rps:,} junk req/s on `/password-resets`",
        a.junk_rps * floor / A["account_concurrency"],
        held_a / A["account_concurrency"],
        f"{fmt(junk_b)} junk req/s take the account's {A['account_concurrency']:,} → never (at most "
        f"{fmt(held_a)} held; the rest 429)",
    ))
    return out


def cost(a, s, cap):
    A = {k: v[0] for k, v in ASSUMED.items()}
    P = PRICES
    req_month = a.tenants * a.tenant_users * a.requests_per_day * 30
    missing = [op for op, _, _ in MIX if op not in cap]
    if missing:
        fail(f"docs/capacity.json lacks {missing}")
    rru = sum(share * units(cap[op], "read_units") for op, share, _ in MIX)
    wru = sum(share * units(cap[op], "write_units") for op, share, _ in MIX)
    # Writes by AWS's rules (the test prices transactions; DynamoDB Local
    # overstates them: README, "Store calls and round trips per operation").
    wru_aws = sum(share * units(cap[op], "write_units_aws") for op, share, _ in MIX)
    logins = a.tenants * a.tenant_users * A["logins_per_user_day"] * 30
    login_wru = logins * 4
    dur_ms = sum(share * (cap[op]["round_trips"] * A["round_trip_ms"] + A["handler_overhead_ms"])
                 for op, share, _ in MIX)
    gb = s["memory_mb"] / 1024
    gb_s = req_month * dur_ms / 1000 * gb
    price_gb_s = P["lambda_gb_s_arm64"] if s["architecture"] == "arm64" else P["lambda_gb_s_x86"]
    apigw = min(req_month, 300e6) / 1e6 * P["apigw_http_per_m_first_300m"] + max(0, req_month - 300e6) / 1e6 * P["apigw_http_per_m_after"]
    log_gb = req_month * sum(LOG_BYTES.values()) / 1e9
    platform_gb = req_month * LOG_BYTES["platform"] / 1e9
    months_kept = s["log_retention_days"] / 30
    storage_gb = a.tenants * a.tenant_users * 4 / 1e6  # ≈ 4 KB a user: item, guards, membership, login, audit
    lines = {
        "DynamoDB reads (on-demand)": req_month * rru / 1e6 * P["ddb_rru_per_m"],
        "DynamoDB writes (on-demand, by AWS's rules)": (req_month * wru_aws + login_wru) / 1e6 * P["ddb_wru_per_m"],
        "DynamoDB storage": storage_gb * P["ddb_storage_gb"],
        "Lambda requests": req_month / 1e6 * P["lambda_req_per_m"],
        f"Lambda duration ({s['memory_mb']} MB {s['architecture']}, ≈ {dur_ms:.0f} ms)": gb_s * price_gb_s,
        "API Gateway HTTP API": apigw,
        "CloudWatch Logs ingestion": log_gb * P["logs_ingest_gb"],
        f"CloudWatch Logs storage ({s['log_retention_days']} days kept)": log_gb * months_kept * P["logs_store_gb_month"],
    }
    # Levers.
    avg_wcu = (req_month * wru_aws + login_wru) / (30 * 86400)
    avg_rcu = req_month * rru / (30 * 86400)
    prov = (avg_wcu * a.peak / 0.7 * P["ddb_wcu_hour"] + avg_rcu * a.peak / 0.7 * P["ddb_rcu_hour"]) * 720
    ondemand = lines["DynamoDB reads (on-demand)"] + lines["DynamoDB writes (on-demand, by AWS's rules)"]
    levers = [
        ("`SystemLogLevel: WARN` (no platform start/report lines)",
         platform_gb * (P["logs_ingest_gb"] + months_kept * P["logs_store_gb_month"])),
        ("function URLs instead of API Gateway", apigw),
        (f"provisioned capacity (autoscaled to 70 % at the peak ×{a.peak}) instead of on-demand",
         ondemand - prov),
        ("(not a lever) the writes priced at DynamoDB Local's figures instead",
         -(req_month * (wru - wru_aws)) / 1e6 * P["ddb_wru_per_m"]),
    ]
    return req_month, rru, wru, wru_aws, lines, levers


# ---------------------------------------------------------------- output

def first_wall(rows, column):
    return max(rows, key=lambda r: r[column])


def render(a):
    s = settings()
    s["ses_rate"] = a.ses_rate
    cap = capacity()
    out = []
    w = out.append
    w("<!-- Generated by scripts/scale-model.py --write; do not edit by hand."
      " scripts/test.sh fails when this drifts from the script's output. -->")
    w("# Scale model (issue 18)")
    w("")
    w("What the first wall is for a given tenant, request rate, bulk size and Auth0/SES limits, "
      "before and after each of issue 18's eight fixes, and what the deployment costs a month. "
      "Computed by `scripts/scale-model.py` from the capacity measured on DynamoDB Local "
      "(`docs/capacity.json`, pinned by `tests/tests/e2e/store_calls.rs`), the template's settings "
      "(`infra/template.yaml`) and the code's bounds; everything else is an assumption listed below. "
      "Rerun with other inputs, e.g. `scripts/scale-model.py --users 2000000 --auth0-rps 16`.")
    w("")
    w("## Scenario")
    w("")
    w(f"- one tenant of **{a.users:,} users**, {a.requests_per_day} requests per user per day, peak hour "
      f"{a.peak}× the mean")
    w(f"- a **{a.bulk:,}-row bulk invite**, {a.accept_share:.0%} accepting in the peak hour; "
      f"{a.jobs} bulk job(s) at once")
    w(f"- Auth0 budget **{fmt(a.auth0_rps)} requests/s**, SES **{fmt(s['ses_rate'])} emails/s**; "
      f"{a.junk_rps:,} junk requests/s on a public route")
    w("")
    w("From the template and code: "
      f"{s['memory_mb']} MB / {s['timeout_s']} s per HTTP function ({s['architecture']}); "
      f"sweepers every {s['auth0_sweeper_every_min']} min with {s['auth0_sweeper_timeout']} s "
      f"(Auth0, batches of {s['auth0_sweep_batch']}, margin {fmt(s['auth0_sweep_margin'])} s) and "
      f"{s['mailer_sweeper_timeout']} s (mail, batches of {s['mailer_sweep_batch']}, margin "
      f"{fmt(s['mailer_sweep_margin'])} s); bulk runner {s['runner_timeout']} s, chunks of "
      f"{s['chunk_rows']}; filtered reads bounded at {s['filtered_bound']:,}; API {fmt(s['api_rate'])} "
      f"req/s, public routes {fmt(s['public_rate'])} req/s each, reserved concurrency "
      f"{fmt(s['public_concurrency'])}; mail {s['mailer_attempts']} attempts; stream batch "
      f"{s['mailer_batch_size']}; pending-key shards {s['pending_shards']}.")
    w("")
    w("## The eight walls, before → after")
    w("")
    w("Load is the scenario's demand over what the wall allows (≥ 1 means hit).")
    w("")
    w("| wall | before | after | scenario | load before | load after | bites at (before → after) |")
    w("|---|---|---|---|---|---|---|")
    rows = walls(a, s, cap)
    for name, b, af, scen, ub, ua, bites in rows:
        w(f"| {name} | {b} | {af} | {scen} | {ub:.2f} | {ua:.2f} | {bites} |")
    w("")
    first_b, first_a = first_wall(rows, 4), first_wall(rows, 5)
    w(f"**First wall before:** {first_b[0]} (load {first_b[4]:.2f}; bites at {first_b[6].split(' → ')[0]}). "
      f"**After:** {first_a[0]} (load {first_a[5]:.2f}; "
      f"{'hit at this scenario' if first_a[5] >= 1 else 'not hit at this scenario'}; bites at "
      f"{first_a[6]}).")
    w("")
    w("The first wall after the fixes for other bulk sizes and Auth0 budgets (same tenant):")
    w("")
    w("| bulk rows | Auth0 req/s | first wall after | load |")
    w("|---|---|---|---|")
    for bulk in (10_000, 100_000, 1_000_000):
        for rps in (2, 16, 50):
            other = argparse.Namespace(**{**vars(a), "bulk": bulk, "auth0_rps": rps})
            r = first_wall(walls(other, s, cap), 5)
            w(f"| {bulk:,} | {rps} | {r[0]} | {r[5]:.2f} |")
    w("")
    A = {k: v[0] for k, v in ASSUMED.items()}
    busy_m = s["mailer_sweeper_timeout"] - s["mailer_sweep_margin"]
    mail_sweep_h = s["ses_rate"] * busy_m * 60 / s["mailer_sweeper_every_min"]
    busy_a = s["auth0_sweeper_timeout"] - s["auth0_sweep_margin"]
    auth0_sweep_h = a.auth0_rps * busy_a / A["auth0_calls_per_push"] * 60 / s["auth0_sweeper_every_min"]
    w("## Drain times")
    w("")
    w("| backlog | before | after |")
    w("|---|---|---|")
    w(f"| outbox: {a.bulk:,} invitation emails, from the stream | same pace, but ≈ "
      f"{(1 - 1 / A['stream_shards']) ** s['mailer_attempts']:.0%} failed for good by throttling | "
      f"{hours(a.bulk / s['ses_rate'] / 3600)} at {fmt(s['ses_rate'])}/s |")
    w(f"| outbox: {a.bulk:,} emails left to the sweeper | {hours(a.bulk / (s['mailer_sweep_batch'] * 60 / s['mailer_sweeper_every_min']))} "
      f"| {hours(a.bulk / mail_sweep_h)} |")
    w(f"| owed Auth0 work: {a.bulk:,} one-call pushes left to the sweeper | "
      f"{hours(a.bulk / (s['auth0_sweep_batch'] * 60 / s['auth0_sweeper_every_min']))} | "
      f"{hours(a.bulk / auth0_sweep_h)} at {fmt(a.auth0_rps)} req/s |")
    w(f"| owed Auth0 work: {a.bulk:,} suspensions (3 calls each) | "
      f"{hours(a.bulk / (s['auth0_sweep_batch'] * 60 / s['auth0_sweeper_every_min']))} | "
      f"{hours(a.bulk * 3 / (a.auth0_rps * busy_a * 60 / s['auth0_sweeper_every_min']))} |")
    w("")
    w("## Accepts per Auth0 plan")
    w("")
    w("The plans' rates are the README's (\"Auth0 rate limits\"); here, the largest bulk invite whose "
      f"peak-hour accepts ({a.accept_share:.0%} of the rows) each plan serves, before (3 calls, "
      "no shared budget) and after (2 calls, one budget):")
    w("")
    w("| plan | requests/s | largest bulk, before | after |")
    w("|---|---|---|---|")
    for plan, rps in auth0_plans():
        w(f"| {plan} | {fmt(rps)} | {fmt(rps / 3 * 3600 / a.accept_share)} | "
          f"{fmt(rps / 2 * 3600 / a.accept_share)} |")
    w("")
    req_month, rru, wru, wru_aws, lines, levers = cost(a, s, cap)
    w(f"## Monthly cost: {a.tenants} tenants × {a.tenant_users:,} users × {a.requests_per_day} "
      "requests/user/day")
    w("")
    w(f"{req_month / 1e6:,.0f} million requests a month (30 days), mixed as below; per request "
      f"{rru:.2f} read units and {wru:.2f} write units as measured on DynamoDB Local "
      f"({wru_aws:.2f} by AWS's rules, computed by the test), plus one recorded sign-in per user per day "
      "(4 write units).")
    w("")
    w("| share | measured operation standing for it | read units | write units, Local | by AWS's rules |")
    w("|---|---|---|---|---|")
    for op, share, what in MIX:
        w(f"| {share:.0%} {what} | {op} | {fmt(units(cap[op], 'read_units'), 1)} | "
          f"{fmt(units(cap[op], 'write_units'), 1)} | {fmt(units(cap[op], 'write_units_aws'), 1)} |")
    w("")
    w("| item | USD / month |")
    w("|---|---|")
    for k, v in lines.items():
        w(f"| {k} | {v:,.0f} |")
    w(f"| **total** | **{sum(lines.values()):,.0f}** |")
    w("")
    w("Levers (USD / month saved; negative = costs more):")
    w("")
    w("| lever | saves |")
    w("|---|---|")
    for k, v in levers:
        w(f"| {k} | {v:,.0f} |")
    w("")
    w("## Assumptions")
    w("")
    for k, (v, why) in ASSUMED.items():
        if v is not None:
            w(f"- `{k}` = {v}: {why}")
    w(f"- log bytes per request: {LOG_BYTES} (the access-log format, one `request` line, Lambda's "
      "JSON platform lines)")
    w("- prices, us-east-1 public list prices as of 2025, not checked against the live price list: "
      + ", ".join(f"`{k}` {v}" for k, v in PRICES.items()))
    w("- the request mix above; a request's Lambda time is its measured sequential round trips "
      "(the most the test allows) × `round_trip_ms` + `handler_overhead_ms`")
    return "\n".join(out) + "\n"


def readme_check():
    """The README's capacity cells equal docs/capacity.json's."""
    readme = (ROOT / "README.md").read_text()
    problems = []
    for op, entry in capacity().items():
        rows = [line for line in readme.splitlines() if line.startswith(f"| {op} |")]
        if not rows:
            problems.append(f"README has no row for {op}")
        elif not any(line.rstrip().endswith(f"| {entry['cells']} |") for line in rows):
            problems.append(f"README's row for {op} does not end with | {entry['cells']} |")
    return problems


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    s = settings()
    p.add_argument("--users", type=int, default=1_000_000, help="users in the tenant")
    p.add_argument("--requests-per-day", type=float, default=20)
    p.add_argument("--peak", type=float, default=3, help="peak hour over the mean")
    p.add_argument("--bulk", type=int, default=100_000, help="rows of the bulk invite")
    p.add_argument("--accept-share", type=float, default=0.15, help="share accepting in the peak hour")
    p.add_argument("--jobs", type=int, default=2, help="bulk jobs at once")
    p.add_argument("--auth0-rps", type=float, default=s["auth0_rps"])
    p.add_argument("--ses-rate", type=float, default=s["ses_rate"], help="SES emails a second")
    p.add_argument("--junk-rps", type=int, default=5_000)
    p.add_argument("--searches", type=float, default=1, help="filtered searches a second")
    p.add_argument("--tenants", type=int, default=100)
    p.add_argument("--tenant-users", type=int, default=10_000)
    p.add_argument("--write", action="store_true", help="rewrite docs/scale.md")
    p.add_argument("--check", action="store_true", help="fail if docs/scale.md or the README drifted")
    a = p.parse_args()
    text = render(a)
    if a.write:
        DOC.write_text(text)
    elif a.check:
        problems = readme_check()
        if not DOC.exists() or DOC.read_text() != text:
            problems.append("docs/scale.md is not what scripts/scale-model.py writes "
                            "(run scripts/scale-model.py --write)")
        if problems:
            sys.exit("scale-model: " + "\n".join(problems))
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Signs a sample Auth0 Action delivery for `sam local invoke`.

    python3 scripts/sign-webhook-event.py events/auth0/password-changed.json \
        whsec_... > /tmp/signed.json
    sam local invoke Auth0WebhookFunction -e /tmp/signed.json

Standard Webhooks deliveries are valid for five minutes and each id is
applied once, so every run gets a fresh id (in the header and the body), the
current time, and a `v1` HMAC-SHA256 signature of `id.timestamp.body` under
the given secret (the one in AUTH0_WEBHOOK_SECRETS). Standard library only.
"""
import base64
import hashlib
import hmac
import json
import sys
import time
import uuid


def sign(event, secret, now=None):
    if not secret.startswith("whsec_"):
        raise SystemExit("the secret must look like whsec_<base64>")
    key = base64.b64decode(secret[len("whsec_"):])
    body = json.loads(event["body"])
    prefix = body["id"].split("_", 1)[0]
    body["id"] = f"{prefix}_{uuid.uuid4().hex}"
    text = json.dumps(body)
    timestamp = str(int(now if now is not None else time.time()))
    mac = hmac.new(key, f"{body['id']}.{timestamp}.{text}".encode(), hashlib.sha256).digest()
    event["body"] = text
    event["headers"]["webhook-id"] = body["id"]
    event["headers"]["webhook-timestamp"] = timestamp
    event["headers"]["webhook-signature"] = "v1," + base64.b64encode(mac).decode()
    return event


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    with open(sys.argv[1]) as fh:
        event = json.load(fh)
    json.dump(sign(event, sys.argv[2]), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

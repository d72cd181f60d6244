/**
 * Auth0 Action — trigger: Post Change Password.
 *
 * Tells peak-users that a user set a password (an invited user does so
 * through the password-change ticket; that makes them `active`).
 *
 * Sends `password.changed` to PEAK_WEBHOOK_URL, signed in the Standard
 * Webhooks scheme (see README.md in this folder). The trigger is
 * asynchronous: nothing here can delay or fail the password change, so the
 * delivery is retried a few times within this run (with the same
 * webhook-id) and, if it still fails, the error is thrown so it shows in the
 * tenant logs; peak-users' reconciliation job repairs what is left.
 *
 * Secrets: PEAK_WEBHOOK_URL, PEAK_WEBHOOK_SECRET (`whsec_...`; during a
 * rotation, two separated by a space: every one signs).
 */

const ATTEMPTS = 3;

exports.onExecutePostChangePassword = async (event) => {
  const user = event.user || {};
  if (!user.user_id) {
    console.log('peak: no user_id on the event; nothing sent');
    return;
  }
  // The same password change gives the same id, so a re-run of this Action
  // is deduplicated by peak-users. Without last_password_reset there is no
  // stable fact to hash; a random id is then the best we have.
  const id = user.last_password_reset
    ? peakEventId('pcp', [user.user_id, user.last_password_reset])
    : 'pcp_' + require('crypto').randomUUID().replace(/-/g, '');
  const time = user.last_password_reset || new Date().toISOString();
  await peakSend(event, ATTEMPTS, {
    type: 'password.changed',
    id,
    time,
    data: {
      user_id: user.user_id,
      // event.user carries no app_metadata in this trigger: peak-users finds
      // the tenant from the user id.
      tenant: null,
    },
  });
};

// ---- peak-webhook-signing: keep identical in every Action file ----
// (shared/webhooks/tests/actions.rs checks that it is; Auth0 Actions cannot
// share code between Actions without publishing a package.)

/** HMAC key of a `whsec_<base64>` secret. */
function peakKey(secret) {
  if (typeof secret !== 'string' || !secret.startsWith('whsec_')) {
    throw new Error('peak: PEAK_WEBHOOK_SECRET must be whsec_<base64>');
  }
  return Buffer.from(secret.slice('whsec_'.length), 'base64');
}

/**
 * The webhook-signature header value: for each secret (space- or
 * comma-separated), `v1,` + base64(HMAC-SHA256(key, `${id}.${timestamp}.${body}`)).
 */
function peakSign(secrets, id, timestamp, body) {
  const crypto = require('crypto');
  return String(secrets)
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((secret) => {
      const mac = crypto
        .createHmac('sha256', peakKey(secret))
        .update(`${id}.${timestamp}.${body}`, 'utf8')
        .digest('base64');
      return `v1,${mac}`;
    })
    .join(' ');
}

/** A webhook-id derived from stable facts: `<prefix>_<32 hex>` (no dots). */
function peakEventId(prefix, parts) {
  const crypto = require('crypto');
  const digest = crypto
    .createHash('sha256')
    .update(parts.map((p) => String(p)).join('\n'), 'utf8')
    .digest('hex');
  return `${prefix}_${digest.slice(0, 32)}`;
}

/**
 * POSTs `message` (its `id` is the webhook-id) to PEAK_WEBHOOK_URL, each
 * attempt freshly timestamped and signed, 5 s timeout per attempt. Retries
 * network errors, 429 and 5xx; a 4xx other than 429 is final (peak-users
 * refused it). Returns true when delivered; throws after the last attempt.
 */
async function peakSend(event, attempts, message) {
  const secrets = event.secrets || {};
  const url = secrets.PEAK_WEBHOOK_URL;
  const secret = secrets.PEAK_WEBHOOK_SECRET;
  if (!url || !secret) {
    console.log('peak: PEAK_WEBHOOK_URL or PEAK_WEBHOOK_SECRET not set; event not sent');
    return false;
  }
  const body = JSON.stringify(message);
  let lastError = null;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const timestamp = Math.floor(Date.now() / 1000);
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'webhook-id': message.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': peakSign(secret, message.id, timestamp, body),
        },
        body,
        signal: AbortSignal.timeout(5000),
      });
      if (response.ok) return true;
      lastError = new Error(`peak: ${message.type} ${message.id} answered HTTP ${response.status}`);
      if (response.status < 500 && response.status !== 429) break;
    } catch (err) {
      lastError = new Error(`peak: ${message.type} ${message.id} failed: ${err && err.name}`);
    }
    if (attempt < attempts) await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
  }
  throw lastError;
}

exports.peak = { peakKey, peakSign, peakEventId, peakSend };
// ---- end peak-webhook-signing ----

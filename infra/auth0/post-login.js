/**
 * Auth0 Action — trigger: Login / Post Login.
 *
 * Puts the user's tenant (app_metadata.tenant) into the access token as
 * the `https://peakcommerce.com/tenant` claim, and tells peak-users that a
 * user logged in (`user.logged_in`) and, once per
 * user and address, that their email address is verified at Auth0
 * (`email.verified`). Both are POSTed to PEAK_WEBHOOK_URL, signed in the
 * Standard Webhooks scheme (see README.md in this folder).
 *
 * This trigger blocks the login, so: one attempt per event, 5 s timeout,
 * both events sent concurrently, and a failure is logged, never thrown: an
 * outage at peak-users must not stop people logging in (peak-users decides
 * access on its own records anyway).
 *
 * Secrets: PEAK_WEBHOOK_URL, PEAK_WEBHOOK_SECRET (`whsec_...`; during a
 * rotation, two separated by a space: every one signs).
 */

const ATTEMPTS = 1;
/** app_metadata key recording which (user, address) verification was sent. */
const VERIFIED_MARK = 'peak_email_verified';

exports.onExecutePostLogin = async (event, api) => {
  const user = event.user || {};
  if (!user.user_id) return;
  const appMetadata = user.app_metadata || {};
  const tenant = typeof appMetadata.tenant === 'string' ? appMetadata.tenant : null;
  // peak-users scopes every request by this claim (and reads the role from
  // its own records). peak-users wrote app_metadata.tenant when it created
  // the login; a login without one gets no claim, and peak-users refuses it.
  if (tenant && api.accessToken && api.accessToken.setCustomClaim) {
    api.accessToken.setCustomClaim('https://peakcommerce.com/tenant', tenant);
  }
  const transaction = event.transaction || {};
  const now = new Date().toISOString();
  const sends = [];

  // A refresh-token exchange also runs this trigger; it is not a login.
  if (transaction.protocol !== 'oauth2-refresh-token') {
    // Stable for this login (so a re-run of the Action is deduplicated), new
    // for the next one (logins_count grows).
    const loginsCount = event.stats && event.stats.logins_count;
    const sessionId = event.session && event.session.id;
    const stable = Boolean(transaction.id || sessionId || loginsCount !== undefined);
    const id = stable
      ? peakEventId('login', [user.user_id, transaction.id || '', sessionId || '', loginsCount])
      : 'login_' + require('crypto').randomUUID().replace(/-/g, '');
    sends.push(
      peakSend(event, ATTEMPTS, {
        type: 'user.logged_in',
        id,
        time: now,
        data: { user_id: user.user_id, tenant },
      }),
    );
  }

  if (user.email && user.email_verified === true) {
    // One id per (user, address): sending it again is harmless (deduplicated),
    // and the mark keeps us from sending it on every login.
    const id = peakEventId('emv', [user.user_id, user.email.toLowerCase()]);
    if (appMetadata[VERIFIED_MARK] !== id) {
      sends.push(
        peakSend(event, ATTEMPTS, {
          type: 'email.verified',
          id,
          time: now,
          data: { user_id: user.user_id, tenant, email: user.email },
        }).then((sent) => {
          if (sent) api.user.setAppMetadata(VERIFIED_MARK, id);
          return sent;
        }),
      );
    }
  }

  const results = await Promise.allSettled(sends);
  for (const result of results) {
    if (result.status === 'rejected') console.log(String(result.reason && result.reason.message));
  }
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

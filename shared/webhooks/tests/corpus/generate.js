#!/usr/bin/env node
// Regenerates the delivery corpus that tests/corpus.rs runs. Not run by CI
// (which needs no Node): the JSON files are committed.
//
//   node shared/webhooks/tests/corpus/generate.js
//
// Signatures are made with the signer of our Auth0 Actions
// (infra/auth0/post-change-password.js), so the corpus also checks that
// what the Actions send is what the Rust verifier accepts.

'use strict';
const fs = require('fs');
const path = require('path');
const { peakSign } = require('../../../../infra/auth0/post-change-password.js').peak;

const dir = __dirname;
const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
const [current, previous] = config.secrets.split(' ');
const unknown = config.unknown_secret;
const [tokenCurrent, tokenPrevious] = config.tokens.split(' ');
const now = config.now;

const iso = (unix) => new Date(unix * 1000).toISOString();
const userId = 'auth0|65f1c0ffee0123456789abcd';
const action = (type, id, data, time = iso(now - 2)) =>
  JSON.stringify({ type, id, time, data: { user_id: userId, ...data } });

/** A correctly signed action delivery; `over` tweaks it afterwards. */
function signed({ id = 'pcp_0123456789abcdef0123456789abcdef', ts = now, body, secret = current }) {
  body = body === undefined ? action('password.changed', id, { tenant: null }) : body;
  return {
    headers: {
      'webhook-id': id,
      'webhook-timestamp': String(ts),
      'webhook-signature': peakSign(secret, id, ts, body),
    },
    body,
  };
}

const cases = {};
function add(channel, name, description, delivery, expect) {
  cases[`${channel}/${name}.json`] = { description, ...delivery, expect };
}
const ok = (kind, extra = {}) => ({ result: 'ok', kind, subject: userId, tenant: null, ...extra });
const err = (result, extra = {}) => ({ result, ...extra });

// ---- Action channel (Standard Webhooks) ----

add('action', 'ok-password-changed', 'A genuine delivery, signed with the current secret.',
  signed({}), ok('password.changed', { key_index: 0 }));
add('action', 'ok-rotation-previous-secret', 'Signed only with the previous secret (sender not yet rotated).',
  signed({ secret: previous }), ok('password.changed', { key_index: 1 }));
add('action', 'ok-rotation-both-signatures', 'Signed with both secrets (sender mid-rotation).',
  signed({ secret: `${current} ${previous}` }), ok('password.changed', { key_index: 0 }));
{
  const d = signed({ secret: `${unknown}` });
  const good = signed({});
  d.headers['webhook-signature'] = [
    'v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=',
    'v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=',
    good.headers['webhook-signature'],
    d.headers['webhook-signature'],
  ].join(' ');
  add('action', 'ok-one-of-several-signatures', 'Decoys, another version and one valid v1 signature.',
    d, ok('password.changed', { key_index: 0 }));
}
{
  const id = 'login_0123456789abcdef0123456789abcdef';
  add('action', 'ok-logged-in', 'user.logged_in naming a tenant.',
    signed({ id, body: action('user.logged_in', id, { tenant: 'acme' }) }),
    ok('user.logged_in', { tenant: 'acme', key_index: 0 }));
}
{
  const id = 'emv_0123456789abcdef0123456789abcdef';
  add('action', 'ok-email-verified', 'email.verified.',
    signed({ id, body: action('email.verified', id, { tenant: 'acme', email: 'ana@example.com' }) }),
    ok('email.verified', { tenant: 'acme', key_index: 0 }));
}
add('action', 'ok-exactly-five-minutes-old', 'Signed exactly 300 s before now: still inside the tolerance.',
  signed({ ts: now - 300 }), ok('password.changed', { key_index: 0 }));
add('action', 'ok-exactly-five-minutes-ahead', 'Signed exactly 300 s after now: still inside the tolerance.',
  signed({ ts: now + 300 }), ok('password.changed', { key_index: 0 }));

// Forged
add('action', 'forged-unknown-secret', 'Signed with a secret we do not have.',
  signed({ secret: unknown }), err('no_valid_signature'));
{
  // The classic integration bug, or a guess: the whole `whsec_...` text used
  // as the HMAC key instead of its decoded base64 part.
  const crypto = require('crypto');
  const d = signed({});
  const mac = crypto.createHmac('sha256', current)
    .update(`${d.headers['webhook-id']}.${d.headers['webhook-timestamp']}.${d.body}`).digest('base64');
  d.headers['webhook-signature'] = `v1,${mac}`;
  add('action', 'forged-secret-text-as-key', 'HMAC keyed with the secret string instead of its decoded bytes.',
    d, err('no_valid_signature'));
}
{
  const d = signed({});
  d.body = d.body.replace('"tenant":null', '"tenant":"globex"');
  add('action', 'forged-tampered-body', 'Genuine headers, body changed after signing.', d, err('no_valid_signature'));
}
{
  const d = signed({});
  d.headers['webhook-id'] = 'pcp_ffffffffffffffffffffffffffffffff';
  d.body = d.body.replace('pcp_0123456789abcdef0123456789abcdef', 'pcp_ffffffffffffffffffffffffffffffff');
  add('action', 'replay-under-new-id', 'A genuine delivery replayed under a fresh id to dodge deduplication.',
    d, err('no_valid_signature'));
}
{
  const d = signed({ ts: now - 3600 });
  d.headers['webhook-timestamp'] = String(now);
  add('action', 'replay-with-fresh-timestamp', 'An hour-old genuine delivery with its timestamp moved to now.',
    d, err('no_valid_signature'));
}
{
  const d = signed({});
  d.body = JSON.stringify(JSON.parse(d.body), null, 2);
  add('action', 'forged-reserialized-body', 'Body parsed and pretty-printed again: no longer the signed bytes.',
    d, err('no_valid_signature'));
}
{
  const crypto = require('crypto');
  const d = signed({});
  const key = Buffer.from(current.slice('whsec_'.length), 'base64');
  d.headers['webhook-signature'] = `v1,${crypto.createHmac('sha256', key).update(d.body).digest('base64')}`;
  add('action', 'forged-body-only-signature', 'HMAC over the body alone, without id and timestamp.',
    d, err('no_valid_signature'));
}
{
  const d = signed({});
  d.headers['webhook-signature'] = d.headers['webhook-signature'].replace(/^v1,/, 'v2,');
  add('action', 'malformed-only-other-version', 'A valid HMAC labelled v2: other versions are ignored.',
    d, err('malformed', { reason: 'webhook-signature has no v1 signature' }));
}
{
  const crypto = require('crypto');
  const d = signed({});
  const key = Buffer.from(current.slice('whsec_'.length), 'base64');
  const hex = crypto.createHmac('sha256', key)
    .update(`${d.headers['webhook-id']}.${d.headers['webhook-timestamp']}.${d.body}`).digest('hex');
  d.headers['webhook-signature'] = `v1,${hex}`;
  add('action', 'malformed-hex-signature', 'The right HMAC, hex- instead of base64-encoded.',
    d, err('malformed', { reason: 'webhook-signature has no v1 signature' }));
}
{
  const d = signed({});
  d.headers['webhook-signature'] = d.headers['webhook-signature'].slice(0, 8);
  add('action', 'malformed-truncated-signature', 'Signature cut short.',
    d, err('malformed', { reason: 'webhook-signature has no v1 signature' }));
}
{
  const d = signed({});
  d.headers['webhook-signature'] = 'v1,';
  add('action', 'malformed-empty-signature', 'v1 with nothing after the comma.',
    d, err('malformed', { reason: 'webhook-signature has no v1 signature' }));
}
{
  const d = signed({});
  d.headers['webhook-signature'] = `t=${now},v1=${d.headers['webhook-signature'].slice(3)}`;
  add('action', 'malformed-other-scheme', 'A Stripe-style `t=...,v1=...` header.',
    d, err('malformed', { reason: 'webhook-signature has no v1 signature' }));
}
{
  const d = signed({});
  d.headers['webhook-signature'] = Array(17).fill(d.headers['webhook-signature']).join(' ');
  add('action', 'malformed-too-many-signatures', 'Seventeen signature entries.',
    d, err('malformed', { reason: 'webhook-signature has too many entries' }));
}
{
  const id = 'pcp_0123456789abcdef0123456789abcdef';
  const body = action('password.changed', 'pcp_99999999999999999999999999999999', { tenant: null });
  add('action', 'malformed-body-id-differs', 'Signed, but the body names another event id than webhook-id.',
    signed({ id, body }), err('malformed', { reason: 'body id differs from webhook-id' }));
}
{
  const id = 'evt_0123456789abcdef';
  const body = action('user.deleted', id, { tenant: 'acme' });
  add('action', 'unsupported-stream-type-on-action-channel', 'A signed body claiming an Event Streams type.',
    signed({ id, body }), err('unsupported_type'));
}

// Replayed / expired
add('action', 'expired-301-seconds', 'Genuine, signed 301 s ago.', signed({ ts: now - 301 }), err('too_old'));
add('action', 'expired-one-day', 'Genuine, signed a day ago (a captured delivery replayed).',
  signed({ ts: now - 86400 }), err('too_old'));
add('action', 'future-301-seconds', 'Genuine, signed 301 s ahead.', signed({ ts: now + 301 }), err('too_new'));
add('action', 'bad-timestamp-milliseconds', 'Genuine, but the timestamp is in milliseconds (beyond year 9999 as seconds).',
  signed({ ts: now * 1000 }), err('bad_timestamp'));
add('action', 'forged-and-expired', 'Forged and stale: reported as a forgery (signature is checked first).',
  signed({ ts: now - 86400, secret: unknown }), err('no_valid_signature'));

// Malformed
for (const header of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
  const d = signed({});
  delete d.headers[header];
  add('action', `missing-${header}`, `No ${header} header.`, d, err('missing_header', { header }));
}
for (const [name, value] of [['word', 'hello'], ['fraction', `${now}.5`], ['negative', `-${now}`], ['empty', '']]) {
  const d = signed({});
  d.headers['webhook-timestamp'] = value;
  add('action', `bad-timestamp-${name}`, `webhook-timestamp ${JSON.stringify(value)}.`, d, err('bad_timestamp'));
}
{
  const d = signed({});
  d.headers['webhook-id'] = '';
  add('action', 'malformed-empty-id', 'Empty webhook-id.', d, err('malformed', { reason: 'webhook-id is empty' }));
}
{
  const id = 'pcp 0123';
  add('action', 'malformed-id-with-space', 'webhook-id with a space (signed).',
    signed({ id, body: action('password.changed', id, { tenant: null }) }),
    err('malformed', { reason: 'webhook-id has characters other than printable ASCII' }));
}
{
  const d = signed({});
  d.body_repeat = { text: 'a', times: 64 * 1024 + 1 };
  delete d.body;
  add('action', 'too-large', 'A body one byte over 64 KiB.', d, err('too_large'));
}
add('action', 'malformed-not-json', 'Signed, but the body is not JSON.',
  signed({ body: 'user_id=auth0|1&type=password.changed' }), err('malformed', { reason: 'body is not JSON' }));
{
  const id = 'pcp_0123456789abcdef0123456789abcdef';
  const body = JSON.stringify({ type: 'password.changed', id, time: iso(now), data: { tenant: 'acme' } });
  add('action', 'malformed-no-user-id', 'Signed, but data.user_id is missing.',
    signed({ id, body }), err('malformed', { reason: 'data.user_id is missing or not a string' }));
}
{
  const id = 'pcp_0123456789abcdef0123456789abcdef';
  const body = JSON.stringify({ type: 'password.changed', id, time: String(now), data: { user_id: userId } });
  add('action', 'malformed-time', 'Signed, but time is Unix seconds, not RFC 3339.',
    signed({ id, body }), err('malformed', { reason: 'time is not an RFC 3339 date-time' }));
}

// ---- Event Streams channel (bearer token + CloudEvents) ----

function cloudEvent(type, object, extra = {}) {
  return JSON.stringify({
    id: 'evt_6SfwXrtm8nVcjzzN',
    source: 'urn:auth0:example.auth0app.com',
    specversion: '1.0',
    type,
    time: '2025-03-01T12:04:58.573Z',
    a0tenant: 'example',
    a0stream: 'est_1234567890abcdef',
    data: { object },
    ...extra,
  });
}
const profile = {
  user_id: userId,
  email: 'ana@example.com',
  email_verified: false,
  identities: [{ connection: 'Username-Password-Authentication', isSocial: false, provider: 'auth0', user_id: '65f1c0ffee0123456789abcd' }],
  app_metadata: { tenant: 'acme' },
  created_at: '2025-03-01T12:04:58.566Z',
  updated_at: '2025-03-01T12:04:58.566Z',
};
const bearer = (token) => ({ authorization: `Bearer ${token}` });

add('event-stream', 'ok-user-created', 'user.created with the current token.',
  { headers: bearer(tokenCurrent), body: cloudEvent('user.created', profile) },
  ok('user.created', { tenant: 'acme' }));
add('event-stream', 'ok-rotation-previous-token', 'com.auth0.user.updated, blocked, with the previous token.',
  { headers: bearer(tokenPrevious), body: cloudEvent('com.auth0.user.updated', { ...profile, blocked: true }) },
  ok('user.updated', { tenant: 'acme', blocked: true }));
add('event-stream', 'ok-lowercase-scheme', 'user.deleted, `bearer` in lower case.',
  { headers: { authorization: `bearer ${tokenCurrent}` }, body: cloudEvent('user.deleted', { ...profile, deleted_at: '2025-03-01T12:04:58.600Z' }) },
  ok('user.deleted', { tenant: 'acme' }));
add('event-stream', 'wrong-token', 'A token we do not have.',
  { headers: bearer(config.unknown_token), body: cloudEvent('user.created', profile) }, err('invalid_token'));
add('event-stream', 'token-prefix-only', 'The first half of the current token.',
  { headers: bearer(tokenCurrent.slice(0, 16)), body: cloudEvent('user.created', profile) }, err('invalid_token'));
add('event-stream', 'missing-authorization', 'No Authorization header.',
  { headers: {}, body: cloudEvent('user.created', profile) }, err('missing_header', { header: 'authorization' }));
add('event-stream', 'basic-scheme', 'Basic instead of Bearer.',
  { headers: { authorization: `Basic ${Buffer.from(`peak:${tokenCurrent}`).toString('base64')}` }, body: cloudEvent('user.created', profile) },
  err('malformed', { reason: 'authorization scheme is not Bearer' }));
add('event-stream', 'token-without-scheme', 'The bare token.',
  { headers: { authorization: tokenCurrent }, body: cloudEvent('user.created', profile) },
  err('malformed', { reason: 'authorization is not `Bearer <token>`' }));
add('event-stream', 'action-type-on-stream', 'password.changed claimed over the bearer channel.',
  { headers: bearer(tokenCurrent), body: cloudEvent('password.changed', profile) }, err('unsupported_type'));
add('event-stream', 'other-auth0-type', 'An Auth0 event type we do not handle.',
  { headers: bearer(tokenCurrent), body: cloudEvent('organization.member.added', profile) }, err('unsupported_type'));
{
  const body = JSON.parse(cloudEvent('user.created', profile));
  delete body.specversion;
  add('event-stream', 'no-specversion', 'No specversion.',
    { headers: bearer(tokenCurrent), body: JSON.stringify(body) }, err('malformed', { reason: 'specversion is missing' }));
}
{
  const { user_id, ...rest } = profile;
  add('event-stream', 'no-user-id', 'data.object without user_id.',
    { headers: bearer(tokenCurrent), body: cloudEvent('user.created', rest) },
    err('malformed', { reason: 'data.object.user_id is missing or not a string' }));
}
add('event-stream', 'too-large', 'A body one byte over 256 KiB.',
  { headers: bearer(tokenCurrent), body_repeat: { text: 'a', times: 256 * 1024 + 1 } }, err('too_large'));

// ---- write ----
for (const sub of ['action', 'event-stream']) {
  const d = path.join(dir, sub);
  fs.mkdirSync(d, { recursive: true });
  for (const f of fs.readdirSync(d)) if (f.endsWith('.json')) fs.unlinkSync(path.join(d, f));
}
for (const [file, c] of Object.entries(cases)) {
  fs.writeFileSync(path.join(dir, file), JSON.stringify(c, null, 2) + '\n');
}
console.log(`wrote ${Object.keys(cases).length} cases`);

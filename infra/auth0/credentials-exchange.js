/**
 * Auth0 Action — trigger: Machine to Machine / Credentials Exchange.
 *
 * Puts the machine client's tenant into its access token as the
 * `https://peakcommerce.com/tenant` claim (the same claim users' tokens
 * carry), so a billing sync application calls peak-users' account routes
 * for exactly one tenant. The tenant is the application's metadata key
 * `peak_tenant` (Applications → <the sync app> → Settings → Advanced →
 * Application Metadata), set by whoever registers the application; an
 * application without it gets no claim, and peak-users refuses its token.
 *
 * Only tokens for the peak-users API are touched (secret PEAK_AUDIENCE:
 * its identifier, the `Auth0Audience` parameter). What the client may do
 * is its scopes (`accounts:read`, `accounts:write`), granted on the API's
 * Machine to Machine Applications tab, never this Action.
 */

/** The peak-users API identifier (the `Auth0Audience` parameter). */
const PEAK_AUDIENCE_SECRET = 'PEAK_AUDIENCE';

exports.onExecuteCredentialsExchange = async (event, api) => {
  const audience = (event.secrets && event.secrets[PEAK_AUDIENCE_SECRET]) || '';
  const api_id = (event.resource_server && event.resource_server.identifier) || '';
  if (api_id !== audience) return;
  const metadata = (event.client && event.client.metadata) || {};
  const tenant = typeof metadata.peak_tenant === 'string' ? metadata.peak_tenant : null;
  if (tenant) {
    api.accessToken.setCustomClaim('https://peakcommerce.com/tenant', tenant);
  }
};

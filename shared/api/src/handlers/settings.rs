//! `GET/PATCH /settings`: the signed-in admin's tenant settings. The
//! portal URL and sending address are shown but only an operator changes
//! them (`peak-admin`).

use super::json;
use crate::problem::Problem;
use crate::request::{etag, if_match, json_body};
use crate::state::AppState;
use crate::views::SettingsView;
use http::{StatusCode, header};
use lambda_http::{Body, Request, Response};
use peak_domain::Actor;
use peak_domain::model::tenant::{SettingsPatch, Tenant};
use peak_domain::tenants;

fn respond(t: &Tenant) -> Response<Body> {
    let mut resp = json(
        StatusCode::OK,
        &SettingsView {
            tenant: t.id.as_str(),
            display_name: &t.display_name,
            portal_url: &t.portal_url,
            sender_address: t.sender_address.as_str(),
            settings: &t.settings,
            version: t.version,
        },
    );
    resp.headers_mut().insert(header::ETAG, etag(t.version));
    resp
}

pub async fn settings_get(state: &AppState, actor: &Actor) -> Result<Response<Body>, Problem> {
    let t = tenants::settings_of(state.tenants.as_ref(), actor).await?;
    Ok(respond(&t))
}

pub async fn settings_update(
    state: &AppState,
    actor: &Actor,
    req: &Request,
    request_id: &str,
) -> Result<Response<Body>, Problem> {
    if actor.user.role != peak_domain::Role::Admin {
        // Refused before the body is read.
        return Err(peak_domain::Error::Forbidden("read or change the tenant's settings").into());
    }
    let patch: SettingsPatch = json_body(req)?;
    let t = tenants::update_settings(
        state.tenants.as_ref(),
        actor,
        &patch,
        if_match(req).as_version(),
        request_id,
        time::OffsetDateTime::now_utc(),
    )
    .await?;
    Ok(respond(&t))
}

crate::dispatch::routes! {
    signed_in SettingsGet |c, a| settings_get(c.state, &a).await;
    signed_in SettingsUpdate |c, a| settings_update(c.state, &a, &c.req, c.request_id).await;
}

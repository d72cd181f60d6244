//! The customer-account directory: search, get, upsert/close. Each route
//! takes a signed-in user (the accounts policy decides inside the use
//! case) or a machine client whose token's scope names the route.

use super::json;
use crate::account_view::AccountView;
use crate::dispatch::{Call, Reply};
use crate::problem::Problem;
use crate::request::{etag, if_match, json_body, page_request, query};
use crate::state::AppState;
use crate::views::PageView;
use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use peak_domain::accounts::{self, Account, AccountCaller, AccountUpsert, MachineClient};
use peak_domain::users::policy::Actor;
use time::OffsetDateTime;

/// The caller of an account route, owned for the request.
pub enum AccountsCaller {
    User(Box<Actor>),
    Machine(MachineClient),
}

impl AccountsCaller {
    pub fn as_caller(&self) -> AccountCaller<'_> {
        match self {
            AccountsCaller::User(a) => AccountCaller::User(a),
            AccountsCaller::Machine(m) => AccountCaller::Machine(m),
        }
    }
}

/// A signed-in user, or a machine client admitted to this route by scope.
fn caller(call: &mut Call<'_>) -> Result<AccountsCaller, Problem> {
    if let Some(actor) = call.actor.take() {
        return Ok(AccountsCaller::User(Box::new(actor)));
    }
    match call.machine.take() {
        Some(m) => {
            crate::machine::admit(&m, call.route)?;
            Ok(AccountsCaller::Machine(m))
        }
        None => Err(Problem::unauthenticated("this route needs an access token")),
    }
}

fn with_etag(mut resp: Response<Body>, a: &Account) -> Response<Body> {
    resp.headers_mut().insert(header::ETAG, etag(a.version));
    resp
}

pub async fn account_list(
    state: &AppState,
    caller: AccountCaller<'_>,
    req: &Request,
) -> Result<Response<Body>, Problem> {
    let page = page_request(req)?;
    let q = query(req).remove("q");
    let result =
        accounts::list_accounts(state.accounts.as_ref(), caller, q.as_deref(), &page).await?;
    let view = PageView {
        items: result.items.iter().map(AccountView::from).collect(),
        next_cursor: result.next_cursor,
    };
    Ok(json(StatusCode::OK, &view))
}

pub async fn account_get(
    state: &AppState,
    caller: AccountCaller<'_>,
    number: Option<&str>,
) -> Result<Response<Body>, Problem> {
    let a = accounts::get_account(state.accounts.as_ref(), caller, number.unwrap_or("")).await?;
    Ok(with_etag(json(StatusCode::OK, &AccountView::from(&a)), &a))
}

pub async fn account_upsert(
    state: &AppState,
    caller: AccountCaller<'_>,
    number: Option<&str>,
    req: &Request,
    request_id: &str,
) -> Result<Response<Body>, Problem> {
    let input: AccountUpsert = json_body(req)?;
    let (a, created) = accounts::upsert_account(
        state.accounts.as_ref(),
        caller,
        number.unwrap_or(""),
        if_match(req).as_version(),
        &input,
        request_id,
        OffsetDateTime::now_utc(),
    )
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut resp = with_etag(json(status, &AccountView::from(&a)), &a);
    if created && let Ok(loc) = HeaderValue::from_str(&format!("/accounts/{}", a.number.as_str())) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

/// `Route::AccountList`.
#[allow(non_snake_case)]
pub fn AccountList(mut call: Call<'_>) -> Reply<'_> {
    Box::pin(async move {
        let who = caller(&mut call)?;
        account_list(call.state, who.as_caller(), &call.req).await
    })
}

/// `Route::AccountGet`.
#[allow(non_snake_case)]
pub fn AccountGet(mut call: Call<'_>) -> Reply<'_> {
    Box::pin(async move {
        let who = caller(&mut call)?;
        account_get(call.state, who.as_caller(), call.id()).await
    })
}

/// `Route::AccountUpsert`.
#[allow(non_snake_case)]
pub fn AccountUpsert(mut call: Call<'_>) -> Reply<'_> {
    Box::pin(async move {
        let who = caller(&mut call)?;
        account_upsert(
            call.state,
            who.as_caller(),
            call.id(),
            &call.req,
            call.request_id,
        )
        .await
    })
}

//! Lambda `account-upsert`: Create or replace a customer account, or close it with status closed (admins and the billing sync; If-Match optional; audited). 201 when created.

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::AccountUpsert, handlers::AccountUpsert)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("account-upsert", routes, ports).await
}

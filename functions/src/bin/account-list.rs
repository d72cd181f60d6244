//! Lambda `account-list`: Customer accounts whose number or name starts with q, for the invite form's association dropdown (admins: all; sales reps and partners: those they serve and their descendants; customers: their own).

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::AccountList, handlers::AccountList)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("account-list", routes, ports).await
}

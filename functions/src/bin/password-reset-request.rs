//! Lambda `password-reset-request`: the signed-out 'forgot password' request.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("password-reset-request").await
}

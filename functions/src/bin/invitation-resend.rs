//! Lambda `invitation-resend`: resend an invitation (new link, old one dead).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("invitation-resend").await
}

//! One Management API request as the client sends and logs it. Its own
//! module so that the retry policy (which logs each attempt by it) and the
//! client (which sends it through that policy) both use it without
//! importing each other.

use http::Method;
use serde_json::Value;

/// One Management API request, as logged: `template` is the path with
/// placeholders (`/api/v2/users/{id}`), never the ids or the query.
pub(crate) struct Call {
    pub op: &'static str,
    pub method: Method,
    pub template: &'static str,
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Value>,
}

impl Call {
    pub(crate) fn new(
        op: &'static str,
        method: Method,
        template: &'static str,
        path: String,
    ) -> Self {
        Self {
            op,
            method,
            template,
            path,
            query: Vec::new(),
            body: None,
        }
    }

    pub(crate) fn query(mut self, query: Vec<(&'static str, String)>) -> Self {
        self.query = query;
        self
    }

    pub(crate) fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// The HTTP request for `base_url`: query string encoded, JSON body,
    /// bearer token when given.
    pub(crate) fn request(
        &self,
        url: &str,
        bearer: Option<&str>,
    ) -> Result<http::Request<Vec<u8>>, http::Error> {
        let mut uri = url.to_owned();
        if !self.query.is_empty() {
            let query = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(self.query.iter().map(|(k, v)| (*k, v.as_str())))
                .finish();
            uri.push('?');
            uri.push_str(&query);
        }
        let mut request = http::Request::builder()
            .method(self.method.clone())
            .uri(uri)
            .header(http::header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        match &self.body {
            Some(body) => request
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(body).expect("a JSON value serializes")),
            None => request.body(Vec::new()),
        }
    }
}

//! What an operation is. One [`Operation`] value per route (the table is
//! `operations.rs`) holds every fact any layer needs: the router (method,
//! path, whether a token is needed, whether `Idempotency-Key` is honoured),
//! the OpenAPI document (summary, bodies, query, success status), the SAM
//! template (IAM actions on the table, Auth0 settings, the bulk bucket,
//! throttling of public routes), the Lambda binary, and the sample event.
//!
//! The router's part is copied out at compile time into `routes::ROUTES`,
//! so a Lambda binary links only that projection: summaries, schemas and
//! samples stay in the `openapi` function and the generators (`xtask/`).

use schemars::{JsonSchema, Schema, SchemaGenerator};

/// The HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    Get,
    Post,
    Patch,
    Put,
    Delete,
}

impl Method {
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }

    pub fn as_http(self) -> http::Method {
        match self {
            Method::Get => http::Method::GET,
            Method::Post => http::Method::POST,
            Method::Patch => http::Method::PATCH,
            Method::Put => http::Method::PUT,
            Method::Delete => http::Method::DELETE,
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<http::Method> for Method {
    fn eq(&self, other: &http::Method) -> bool {
        self.as_str() == other.as_str()
    }
}

/// A JSON Schema of a Rust type, registered with the document's generator.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The schema of `T` (`schema::<UserView>` in the table).
pub fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A user's access token (Auth0 JWT authorizer).
    SignedIn,
    /// Anyone (links from emails, the signed-out reset, the webhook, this
    /// document): API Gateway throttles the route below the stage's limits
    /// and its function gets a reserved concurrency.
    Public(Throttle),
}

/// Which template parameters limit a public route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// `PublicRouteThrottle*`.
    PublicRoute,
    /// `WebhookThrottle*`: Auth0 sends in bursts and retries on 429.
    Webhook,
}

/// An operation's function's memory and timeout, and why (the template
/// writes the reason beside the figures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    pub memory_mb: u32,
    pub timeout_secs: u32,
    pub why: &'static str,
}

impl Sizing {
    /// The template's `Globals`: every function not sized otherwise.
    pub const REQUEST: Sizing = Sizing {
        memory_mb: 256,
        timeout_secs: 10,
        why: "a request is a few store calls (each bounded by the SDK's \
              timeouts) and no heavy CPU: 20-30 MB of memory, milliseconds of \
              CPU; 10 s stays well under API Gateway's 30 s, so a stuck call \
              ends as this function's own 503, and under the idempotency lease",
    };
    /// Waits on the Auth0 Management API while answering.
    pub const AUTH0_CALLS: Sizing = Sizing {
        memory_mb: 256,
        timeout_secs: 25,
        why: "two Management API calls (10 s budget each, cut to what is left \
              of the invocation) and the store fit; under API Gateway's 30 s, \
              so the person gets this function's answer (a 503 with \
              Retry-After), never API Gateway's 504",
    };
    /// Applies what Auth0 tells it, holding a delivery by a lease.
    pub const WEBHOOK: Sizing = Sizing {
        memory_mb: 256,
        timeout_secs: 20,
        why: "more than one Management API call's budget (10 s), so a call that \
              runs to it is answered, and less than the delivery lease (30 s), \
              so a delivery held by a stopped invocation is free again once it \
              is dead",
    };
}

/// What a function may do to the table. There is no default: each
/// operation names its own, and the template grants exactly that. Every
/// access reads users, and a user is read with one query of its partition
/// (the user and their last sign-in): `Query` on the table comes with
/// `Read` and `Write`; the `…Query` variants also query secondary indexes
/// (lists), and `ReadQueryBatch` also batch-reads (a listed page's last
/// sign-ins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Serves something built into the binary: no AWS access at all.
    Nothing,
    Read,
    ReadQuery,
    ReadQueryBatch,
    Write,
    WriteQuery,
}

impl Table {
    /// The IAM actions, in the order the template lists them.
    pub fn actions(self) -> Vec<&'static str> {
        const READ: &[&str] = &["dynamodb:GetItem", "dynamodb:Query"];
        const WRITE: &[&str] = &[
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:ConditionCheckItem",
        ];
        let mut out = match self {
            Table::Nothing => Vec::new(),
            Table::Read | Table::ReadQuery | Table::ReadQueryBatch => READ.to_vec(),
            Table::Write | Table::WriteQuery => WRITE.to_vec(),
        };
        if self == Table::ReadQueryBatch {
            out.push("dynamodb:BatchGetItem");
        }
        out
    }

    /// Whether it queries secondary indexes (beyond the table).
    pub fn queries_indexes(self) -> bool {
        matches!(
            self,
            Table::ReadQuery | Table::ReadQueryBatch | Table::WriteQuery
        )
    }
}

/// What a request carries.
#[derive(Debug, Clone, Copy)]
pub enum RequestBody {
    None,
    /// A JSON object of this type (`required` in the document).
    Json(SchemaFn),
    /// A file (CSV or Excel) as the body.
    File,
}

/// The type of a query parameter, as the handler parses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryType {
    String,
    /// A whole number in `min..=max`.
    Integer {
        min: u32,
        max: u32,
    },
    Boolean,
}

/// One query parameter (all are optional).
#[derive(Debug, Clone, Copy)]
pub struct QueryParam {
    pub name: &'static str,
    pub description: &'static str,
    pub kind: QueryType,
    /// The value must not be empty.
    pub min_length: Option<u32>,
    /// At most this many characters.
    pub max_length: Option<u32>,
    /// One of these values.
    pub one_of: &'static [&'static str],
}

impl QueryParam {
    pub const fn string(name: &'static str, description: &'static str) -> Self {
        QueryParam {
            name,
            description,
            kind: QueryType::String,
            min_length: None,
            max_length: None,
            one_of: &[],
        }
    }

    pub const fn integer(
        name: &'static str,
        description: &'static str,
        min: u32,
        max: u32,
    ) -> Self {
        QueryParam {
            kind: QueryType::Integer { min, max },
            ..QueryParam::string(name, description)
        }
    }

    pub const fn boolean(name: &'static str, description: &'static str) -> Self {
        QueryParam {
            kind: QueryType::Boolean,
            ..QueryParam::string(name, description)
        }
    }

    pub const fn length(mut self, min: u32, max: u32) -> Self {
        self.min_length = Some(min);
        self.max_length = Some(max);
        self
    }

    pub const fn one_of(mut self, values: &'static [&'static str]) -> Self {
        self.one_of = values;
        self
    }
}

/// The body of an operation's sample event.
#[derive(Debug, Clone, Copy)]
pub enum SampleBody {
    None,
    /// JSON text, written as it goes into the event.
    Json(&'static str),
    /// A file of this content type.
    File {
        content_type: &'static str,
        text: &'static str,
    },
}

/// What `events/<function>.json` shows beyond what the path and flags say.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub query: &'static [(&'static str, &'static str)],
    pub body: SampleBody,
    /// Extra headers (a webhook's own credentials).
    pub headers: &'static [(&'static str, &'static str)],
}

/// Every fact about one operation.
#[derive(Debug, Clone, Copy)]
pub struct Operation<R> {
    /// Its name (`operations::Route`).
    pub route: R,
    pub method: Method,
    /// API Gateway syntax: `{name}` is a path parameter.
    pub path: &'static str,
    /// The Lambda function (binary, template resource, event file): the
    /// variant's name in kebab case (a test checks).
    pub function: &'static str,
    /// One line, used as the OpenAPI summary, the Lambda's description and
    /// its binary's doc comment.
    pub summary: &'static str,
    pub access: Access,
    /// A POST that creates: honours `Idempotency-Key`.
    pub idempotent: bool,
    pub request: RequestBody,
    pub query: &'static [QueryParam],
    /// The success status.
    pub status: u16,
    /// The success body (JSON), if the document describes one.
    pub answer: Option<SchemaFn>,
    /// Another content type the success answer may take (`text/csv`).
    pub answer_type: Option<&'static str>,
    pub table: Table,
    /// Calls the Auth0 Management API: gets the `AUTH0_*` settings and may
    /// read the Auth0 secret.
    pub auth0: bool,
    /// Answers a browser with a page in the tenant's brand (`EMAIL_BRANDS`).
    pub pages: bool,
    /// S3 actions on the bulk bucket's `bulk/` prefix (and `BULK_BUCKET`).
    pub bulk_bucket: &'static [&'static str],
    /// Memory and timeout ([`Sizing::REQUEST`] unless said).
    pub sizing: Sizing,
    pub sample: Sample,
}

impl<R: Copy> Operation<R> {
    /// A signed-in operation answering 200 with no body documented; the
    /// builders below say the rest. `table` has no default.
    pub const fn new(
        route: R,
        method: Method,
        path: &'static str,
        function: &'static str,
        table: Table,
        summary: &'static str,
    ) -> Self {
        Operation {
            route,
            method,
            path,
            function,
            summary,
            access: Access::SignedIn,
            idempotent: false,
            request: RequestBody::None,
            query: &[],
            status: 200,
            answer: None,
            answer_type: None,
            table,
            auth0: false,
            pages: false,
            bulk_bucket: &[],
            sizing: Sizing::REQUEST,
            sample: Sample {
                query: &[],
                body: SampleBody::None,
                headers: &[],
            },
        }
    }

    pub const fn public(mut self, throttle: Throttle) -> Self {
        self.access = Access::Public(throttle);
        self
    }

    /// Honours `Idempotency-Key`.
    pub const fn creates(mut self) -> Self {
        self.idempotent = true;
        self
    }

    pub const fn takes(mut self, body: RequestBody) -> Self {
        self.request = body;
        self
    }

    pub const fn query(mut self, params: &'static [QueryParam]) -> Self {
        self.query = params;
        self
    }

    /// Success status, and its JSON body if documented.
    pub const fn answers(mut self, status: u16, body: Option<SchemaFn>) -> Self {
        self.status = status;
        self.answer = body;
        self
    }

    pub const fn answers_as(mut self, content_type: &'static str) -> Self {
        self.answer_type = Some(content_type);
        self
    }

    pub const fn auth0(mut self) -> Self {
        self.auth0 = true;
        self
    }

    pub const fn pages(mut self) -> Self {
        self.pages = true;
        self
    }

    pub const fn bulk_bucket(mut self, actions: &'static [&'static str]) -> Self {
        self.bulk_bucket = actions;
        self
    }

    pub const fn sized(mut self, sizing: Sizing) -> Self {
        self.sizing = sizing;
        self
    }

    /// The sample event's query string.
    pub const fn sample_query(mut self, query: &'static [(&'static str, &'static str)]) -> Self {
        self.sample.query = query;
        self
    }

    pub const fn sample_body(mut self, body: SampleBody) -> Self {
        self.sample.body = body;
        self
    }

    /// Headers the sample event carries beyond the usual ones.
    pub const fn sample_headers(
        mut self,
        headers: &'static [(&'static str, &'static str)],
    ) -> Self {
        self.sample.headers = headers;
        self
    }

    pub const fn authenticated(&self) -> bool {
        matches!(self.access, Access::SignedIn)
    }
}

//! Which response fields the client reads, per Management API route, taken
//! from the very `Deserialize` structs it parses answers with (a recording
//! deserializer asks each struct for its field names), so the conformance
//! test can hold them against Auth0's definition without a list to keep in
//! step by hand.

use crate::export::{ExportJobCreated, ExportJobState};
use crate::logins::{Auth0User, Identity, Ticket};
use serde::de::{self, Deserialize, Deserializer, Visitor};

/// Responses of one route the client parses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reads {
    pub method: &'static str,
    /// With placeholders, as Auth0's definition names it (`/api/v2/users/{id}`).
    pub path: &'static str,
    /// The answer is a list of such objects.
    pub array: bool,
    /// Field paths read: `user_id`, `identities[].connection`.
    pub fields: Vec<String>,
}

/// Every response the client parses (the token endpoint belongs to the
/// Authentication API, not the Management API, and is not listed).
pub fn reads() -> Vec<Reads> {
    let user: Vec<String> = fields_of::<Auth0User>()
        .iter()
        .map(|f| (*f).to_owned())
        .chain(
            fields_of::<Identity>()
                .iter()
                .map(|f| format!("identities[].{f}")),
        )
        .collect();
    let of = |method, path, array, fields: Vec<String>| Reads {
        method,
        path,
        array,
        fields,
    };
    let names = |f: &[&str]| f.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    vec![
        of("GET", "/api/v2/users-by-email", true, user.clone()),
        of("POST", "/api/v2/users", false, user.clone()),
        of("GET", "/api/v2/users/{id}", false, user),
        of(
            "POST",
            "/api/v2/tickets/password-change",
            false,
            names(fields_of::<Ticket>()),
        ),
        of(
            "POST",
            "/api/v2/jobs/users-exports",
            false,
            names(fields_of::<ExportJobCreated>()),
        ),
        of(
            "GET",
            "/api/v2/jobs/{id}",
            false,
            names(fields_of::<ExportJobState>()),
        ),
    ]
}

/// The field names `T`'s `Deserialize` asks for.
fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut recorder = FieldRecorder(&[]);
    let _ = T::deserialize(&mut recorder);
    recorder.0
}

struct FieldRecorder(&'static [&'static str]);

impl<'de> Deserializer<'de> for &mut FieldRecorder {
    type Error = de::value::Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0 = fields;
        Err(de::Error::custom("fields recorded"))
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_structs_name_their_fields() {
        let all = reads();
        let user = all
            .iter()
            .find(|r| r.path == "/api/v2/users/{id}")
            .expect("get user");
        for f in [
            "user_id",
            "email",
            "blocked",
            "app_metadata",
            "identities[].connection",
        ] {
            assert!(user.fields.iter().any(|x| x == f), "{f}: {:?}", user.fields);
        }
        let ticket = all
            .iter()
            .find(|r| r.path == "/api/v2/tickets/password-change")
            .expect("ticket");
        assert_eq!(ticket.fields, vec!["ticket".to_owned()]);
    }
}

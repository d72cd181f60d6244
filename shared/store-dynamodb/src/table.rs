//! The table, from its one definition: the `Table` resource of the SAM
//! template (infra/template.yaml), embedded at build time. Tests and local
//! runs create their table from it, so they cannot drift from what is
//! deployed.

use crate::error::sdk;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, ScalarAttributeType, SseSpecification, StreamSpecification,
    StreamViewType, TableStatus, TimeToLiveSpecification,
};
use peak_domain::ports::StoreError;
use serde::Deserialize;
use std::time::Duration;

/// The SAM template, as deployed.
pub const TEMPLATE: &str = include_str!("../../../infra/template.yaml");

/// The logical id of the table in [`TEMPLATE`].
pub const TABLE_RESOURCE: &str = "Table";

/// The part of an `AWS::DynamoDB::Table` resource's properties that
/// [`create_table`] applies. The rest is ignored: TableName (with its
/// `!Sub`; callers name their table) and PointInTimeRecoverySpecification
/// (DynamoDB Local has no UpdateContinuousBackups).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableDefinition {
    pub attribute_definitions: Vec<AttributeDef>,
    pub key_schema: Vec<KeyElement>,
    #[serde(default)]
    pub global_secondary_indexes: Vec<IndexDef>,
    #[serde(default)]
    pub billing_mode: Option<String>,
    #[serde(default)]
    pub time_to_live_specification: Option<TtlDef>,
    #[serde(default)]
    pub stream_specification: Option<StreamDef>,
    #[serde(default, rename = "SSESpecification")]
    pub sse_specification: Option<SseDef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamDef {
    pub stream_view_type: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SseDef {
    #[serde(rename = "SSEEnabled")]
    pub sse_enabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeDef {
    pub attribute_name: String,
    pub attribute_type: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyElement {
    pub attribute_name: String,
    pub key_type: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexDef {
    pub index_name: String,
    pub key_schema: Vec<KeyElement>,
    pub projection: ProjectionDef,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProjectionDef {
    pub projection_type: String,
    #[serde(default)]
    pub non_key_attributes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TtlDef {
    pub attribute_name: String,
    #[serde(default)]
    pub enabled: bool,
}

impl TableDefinition {
    /// The `Table` resource of the embedded template.
    pub fn from_template() -> Result<Self, StoreError> {
        Self::parse(TEMPLATE, TABLE_RESOURCE)
    }

    /// Reads resource `logical_id` of a CloudFormation/SAM template.
    pub fn parse(template: &str, logical_id: &str) -> Result<Self, StoreError> {
        let bad = |what: &str| StoreError::Backend(format!("table template: {what}"));
        let doc: serde_yaml::Value =
            serde_yaml::from_str(template).map_err(|e| bad(&format!("not YAML ({e})")))?;
        let resource = doc
            .get("Resources")
            .and_then(|r| r.get(logical_id))
            .ok_or_else(|| bad(&format!("no resource `{logical_id}`")))?;
        if resource.get("Type").and_then(serde_yaml::Value::as_str) != Some("AWS::DynamoDB::Table")
        {
            return Err(bad(&format!(
                "`{logical_id}` is not an AWS::DynamoDB::Table"
            )));
        }
        let properties = resource
            .get("Properties")
            .cloned()
            .ok_or_else(|| bad("no Properties"))?;
        serde_yaml::from_value(properties).map_err(|e| bad(&format!("unexpected Properties ({e})")))
    }

    fn key_schema(elements: &[KeyElement]) -> Result<Vec<KeySchemaElement>, StoreError> {
        elements
            .iter()
            .map(|k| {
                KeySchemaElement::builder()
                    .attribute_name(&k.attribute_name)
                    .key_type(KeyType::from(k.key_type.as_str()))
                    .build()
                    .map_err(build_error)
            })
            .collect()
    }

    fn attribute_definitions(&self) -> Result<Vec<AttributeDefinition>, StoreError> {
        self.attribute_definitions
            .iter()
            .map(|a| {
                AttributeDefinition::builder()
                    .attribute_name(&a.attribute_name)
                    .attribute_type(ScalarAttributeType::from(a.attribute_type.as_str()))
                    .build()
                    .map_err(build_error)
            })
            .collect()
    }

    fn global_secondary_indexes(&self) -> Result<Vec<GlobalSecondaryIndex>, StoreError> {
        self.global_secondary_indexes
            .iter()
            .map(|i| {
                let projection = Projection::builder()
                    .projection_type(ProjectionType::from(i.projection.projection_type.as_str()))
                    .set_non_key_attributes(
                        (!i.projection.non_key_attributes.is_empty())
                            .then(|| i.projection.non_key_attributes.clone()),
                    )
                    .build();
                GlobalSecondaryIndex::builder()
                    .index_name(&i.index_name)
                    .set_key_schema(Some(Self::key_schema(&i.key_schema)?))
                    .projection(projection)
                    .build()
                    .map_err(build_error)
            })
            .collect()
    }

    fn stream(&self) -> Result<Option<StreamSpecification>, StoreError> {
        self.stream_specification
            .as_ref()
            .map(|st| {
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(st.stream_view_type.as_str()))
                    .build()
                    .map_err(build_error)
            })
            .transpose()
    }

    fn sse(&self) -> Option<SseSpecification> {
        self.sse_specification
            .as_ref()
            .map(|sse| SseSpecification::builder().enabled(sse.sse_enabled).build())
    }
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Backend(format!("table template: {e}"))
}

/// Creates table `table_name` as the template's `Table` resource defines
/// it (keys, attributes, GSIs, billing mode, stream, SSE), waits until it
/// is active, then enables its TTL. Point-in-time recovery is not applied
/// (DynamoDB Local does not support it). Only pay-per-request tables are
/// supported, which is what the template declares. Idempotent: an existing
/// table is left as it is.
pub async fn create_table(client: &Client, table_name: &str) -> Result<(), StoreError> {
    let def = TableDefinition::from_template()?;
    let billing = def.billing_mode.as_deref().unwrap_or("PROVISIONED");
    if billing != "PAY_PER_REQUEST" {
        return Err(StoreError::Backend(format!(
            "table template: BillingMode {billing} is not supported, use PAY_PER_REQUEST"
        )));
    }
    let gsis = def.global_secondary_indexes()?;
    let created = client
        .create_table()
        .table_name(table_name)
        .set_attribute_definitions(Some(def.attribute_definitions()?))
        .set_key_schema(Some(TableDefinition::key_schema(&def.key_schema)?))
        .set_global_secondary_indexes((!gsis.is_empty()).then_some(gsis))
        .billing_mode(BillingMode::PayPerRequest)
        .set_stream_specification(def.stream()?)
        .set_sse_specification(def.sse())
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(CreateTableError::ResourceInUseException(_))
            ) =>
        {
            return Ok(());
        }
        Err(e) => return Err(sdk("create table", &e)),
    }
    wait_until_active(client, table_name).await?;
    if let Some(ttl) = def.time_to_live_specification.filter(|t| t.enabled) {
        let spec = TimeToLiveSpecification::builder()
            .attribute_name(ttl.attribute_name)
            .enabled(true)
            .build()
            .map_err(build_error)?;
        client
            .update_time_to_live()
            .table_name(table_name)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(|e| sdk("enable TTL", &e))?;
    }
    Ok(())
}

async fn wait_until_active(client: &Client, table_name: &str) -> Result<(), StoreError> {
    // Instant on DynamoDB Local; up to a minute or two on AWS with indexes.
    for _ in 0..300 {
        let out = client
            .describe_table()
            .table_name(table_name)
            .send()
            .await
            .map_err(|e| sdk("describe table", &e))?;
        let table = out.table();
        let table_active = table.and_then(|t| t.table_status()) == Some(&TableStatus::Active);
        let indexes_active = table.is_some_and(|t| {
            t.global_secondary_indexes()
                .iter()
                .all(|i| i.index_status() == Some(&IndexStatus::Active))
        });
        if table_active && indexes_active {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(StoreError::Unavailable(
        "create table: table not active after 150 s".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_defines_the_single_table() {
        let def = TableDefinition::from_template().unwrap();
        let keys: Vec<_> = def
            .key_schema
            .iter()
            .map(|k| (k.attribute_name.as_str(), k.key_type.as_str()))
            .collect();
        assert_eq!(keys, [("PK", "HASH"), ("SK", "RANGE")]);
        let indexes: Vec<_> = def
            .global_secondary_indexes
            .iter()
            .map(|i| {
                let keys: Vec<_> = i
                    .key_schema
                    .iter()
                    .map(|k| (k.attribute_name.as_str(), k.key_type.as_str()))
                    .collect();
                (i.index_name.as_str(), keys)
            })
            .collect();
        // What the store queries (user_item::index), hash then range.
        let expected: Vec<_> = crate::user_item::index::USER_INDEXES
            .iter()
            .map(|(name, pk, sk)| (*name, vec![(*pk, "HASH"), (*sk, "RANGE")]))
            .collect();
        assert_eq!(indexes, expected);
        for (_, pk, sk) in crate::user_item::index::USER_INDEXES {
            for key in [pk, sk] {
                assert!(
                    def.attribute_definitions
                        .iter()
                        .any(|a| a.attribute_name == key),
                    "{key} is defined"
                );
            }
        }
        assert!(
            def.global_secondary_indexes
                .iter()
                .all(|i| i.projection.projection_type == "ALL")
        );
        assert_eq!(def.billing_mode.as_deref(), Some("PAY_PER_REQUEST"));
        let ttl = def.time_to_live_specification.as_ref().unwrap();
        assert_eq!(
            (ttl.attribute_name.as_str(), ttl.enabled),
            ("expires_at", true)
        );
        assert!(
            def.attribute_definitions
                .iter()
                .all(|a| a.attribute_type == "S")
        );
        assert_eq!(
            def.stream_specification.as_ref().unwrap().stream_view_type,
            "NEW_AND_OLD_IMAGES"
        );
        assert!(def.sse_specification.as_ref().unwrap().sse_enabled);
        // The SDK builders accept it.
        def.attribute_definitions().unwrap();
        def.global_secondary_indexes().unwrap();
    }

    #[test]
    fn a_wrong_resource_is_refused() {
        let err =
            TableDefinition::parse("Resources:\n  Table:\n    Type: AWS::S3::Bucket\n", "Table")
                .unwrap_err();
        assert!(matches!(err, StoreError::Backend(m) if m.contains("not an AWS::DynamoDB::Table")));
        assert!(TableDefinition::parse("Resources: {}", "Table").is_err());
    }
}

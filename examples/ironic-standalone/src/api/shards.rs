//! `GET /v1/shards` (1.82): shard names and their node counts.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use ironic_core::store::NodeQuery;
use serde_json::{Value, json};

use super::error::ApiResult;
use super::routes::{Body, Gate, Route, get};
use super::version::feature as f;
use super::{ApiState, ok_value};

pub(super) fn routes() -> Vec<Route> {
    vec![
        get("/v1/shards", shards)
            .doc("Shards and their node counts")
            .since_or(
                f::SHARDS,
                Gate::fault(404, "The API version does not allow shards"),
            )
            .returns(Body::Object("{shards: [{name, count}]}")),
    ]
}

/// `GET /v1/shards` (1.82): shard names and their node counts.
async fn shards(State(st): State<ApiState>) -> ApiResult<Response> {
    let mut query = NodeQuery::default();
    query.filter.sharded = Some(true);
    let nodes = st.conductor().list_nodes(&query).await?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for n in nodes {
        if let Some(s) = n.shard {
            *counts.entry(s).or_default() += 1;
        }
    }
    let items: Vec<Value> = counts
        .into_iter()
        .map(|(name, count)| json!({"name": name, "count": count}))
        .collect();
    ok_value(&json!({ "shards": items }))
}

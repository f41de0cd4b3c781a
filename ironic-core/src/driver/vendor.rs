use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{BaseInterface, Task};
use crate::error::DriverError;

/// A vendor passthru method (`/v1/nodes/{id}/vendor_passthru?method=`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VendorRoute {
    /// Method name.
    pub method: String,
    /// HTTP methods accepted.
    pub http_methods: Vec<String>,
    /// Whether it runs asynchronously (202).
    pub is_async: bool,
    /// Description.
    pub description: String,
    /// Whether the response is an attachment.
    pub attach: bool,
    /// Whether it needs the exclusive lock.
    pub require_exclusive_lock: bool,
}

impl VendorRoute {
    /// A synchronous method (200 with its result) that takes the node's
    /// exclusive lock, as Ironic's `@passthru` defaults; set
    /// [`is_async`](Self::is_async) for one that answers 202 without a body.
    pub fn new(
        method: impl Into<String>,
        http_methods: &[&str],
        description: impl Into<String>,
    ) -> Self {
        VendorRoute {
            method: method.into(),
            http_methods: http_methods.iter().map(|m| (*m).to_owned()).collect(),
            is_async: false,
            description: description.into(),
            attach: false,
            require_exclusive_lock: true,
        }
    }
}

/// Vendor-specific methods (Ironic's `VendorInterface`).
#[async_trait]
pub trait VendorInterface: BaseInterface {
    /// The node-level methods.
    fn routes(&self) -> Vec<VendorRoute> {
        Vec::new()
    }
    /// Call a method.
    async fn call(
        &self,
        task: &mut Task,
        method: &str,
        http_method: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, DriverError> {
        let _ = (task, http_method, body);
        Err(DriverError::unsupported(format!(
            "vendor passthru method {method}"
        )))
    }
}

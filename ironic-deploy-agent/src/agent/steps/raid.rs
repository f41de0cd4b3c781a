//! Software RAID (`create_configuration`, `delete_configuration`,
//! `apply_configuration`) with mdadm, as IPA's generic hardware manager.

use serde_json::Value;

use crate::error::{AgentError, Result};

/// The RAID steps (not yet available: they fail clearly).
pub(crate) async fn run(name: &str, _node: &Value) -> Result<Value> {
    Err(AgentError::CommandFailed(format!(
        "{name}: software RAID (mdadm) is not implemented by this agent yet"
    )))
}

//! The OpenAPI 3.0 document of the API, served at `GET /v1/openapi.json`.
//!
//! Built from one table of operations (path, method, summary, minimum
//! microversion, success status) so it stays next to the routes it describes.

use axum::response::Response;
use serde_json::{Map, Value, json};

use super::error::ApiResult;
use super::version::{MAX, MIN};
use super::{ReqCtx, ok_value};

/// One operation: path, method, summary, minimum minor version, success status.
pub const OPERATIONS: &[(&str, &str, &str, u32, u16)] = &[
    ("/", "get", "API versions", 1, 200),
    ("/v1", "get", "Resources of API v1", 1, 200),
    ("/v1/openapi.json", "get", "This document", 1, 200),
    ("/v1/nodes", "get", "List nodes", 1, 200),
    ("/v1/nodes", "post", "Create a node", 1, 201),
    ("/v1/nodes/detail", "get", "List nodes with details", 1, 200),
    ("/v1/nodes/{node}", "get", "Show a node", 1, 200),
    (
        "/v1/nodes/{node}",
        "patch",
        "Update a node (JSON patch)",
        1,
        200,
    ),
    ("/v1/nodes/{node}", "delete", "Delete a node", 1, 204),
    ("/v1/nodes/{node}/states", "get", "Node states", 1, 200),
    (
        "/v1/nodes/{node}/states/provision",
        "put",
        "Change provision state",
        1,
        202,
    ),
    (
        "/v1/nodes/{node}/states/power",
        "put",
        "Change power state",
        1,
        202,
    ),
    (
        "/v1/nodes/{node}/states/boot_mode",
        "put",
        "Set boot mode",
        76,
        202,
    ),
    (
        "/v1/nodes/{node}/states/secure_boot",
        "put",
        "Set secure boot",
        76,
        202,
    ),
    (
        "/v1/nodes/{node}/states/raid",
        "put",
        "Set target RAID config",
        12,
        204,
    ),
    (
        "/v1/nodes/{node}/states/console",
        "get",
        "Console information",
        1,
        200,
    ),
    (
        "/v1/nodes/{node}/states/console",
        "put",
        "Enable/disable console",
        1,
        202,
    ),
    (
        "/v1/nodes/{node}/management/boot_device",
        "get",
        "Current boot device",
        1,
        200,
    ),
    (
        "/v1/nodes/{node}/management/boot_device",
        "put",
        "Set boot device",
        1,
        204,
    ),
    (
        "/v1/nodes/{node}/management/boot_device/supported",
        "get",
        "Supported boot devices",
        1,
        200,
    ),
    (
        "/v1/nodes/{node}/management/inject_nmi",
        "put",
        "Inject NMI",
        29,
        204,
    ),
    (
        "/v1/nodes/{node}/maintenance",
        "put",
        "Set maintenance",
        1,
        202,
    ),
    (
        "/v1/nodes/{node}/maintenance",
        "delete",
        "Clear maintenance",
        1,
        202,
    ),
    (
        "/v1/nodes/{node}/validate",
        "get",
        "Validate interfaces",
        1,
        200,
    ),
    ("/v1/nodes/{node}/traits", "get", "List traits", 37, 200),
    ("/v1/nodes/{node}/traits", "put", "Set all traits", 37, 204),
    (
        "/v1/nodes/{node}/traits",
        "delete",
        "Remove all traits",
        37,
        204,
    ),
    (
        "/v1/nodes/{node}/traits/{trait}",
        "put",
        "Add a trait",
        37,
        204,
    ),
    (
        "/v1/nodes/{node}/traits/{trait}",
        "delete",
        "Remove a trait",
        37,
        204,
    ),
    ("/v1/nodes/{node}/vifs", "get", "List VIFs", 28, 200),
    ("/v1/nodes/{node}/vifs", "post", "Attach a VIF", 28, 204),
    (
        "/v1/nodes/{node}/vifs/{vif}",
        "delete",
        "Detach a VIF",
        28,
        204,
    ),
    ("/v1/nodes/{node}/history", "get", "Node history", 78, 200),
    (
        "/v1/nodes/{node}/history/{event}",
        "get",
        "One history event",
        78,
        200,
    ),
    ("/v1/nodes/{node}/ports", "get", "Ports of a node", 1, 200),
    (
        "/v1/nodes/{node}/ports/detail",
        "get",
        "Ports of a node with details",
        1,
        200,
    ),
    (
        "/v1/nodes/{node}/portgroups",
        "get",
        "Port groups of a node",
        24,
        200,
    ),
    (
        "/v1/nodes/{node}/portgroups/detail",
        "get",
        "Port groups of a node with details",
        24,
        200,
    ),
    ("/v1/nodes/{node}/bios", "get", "BIOS settings", 40, 200),
    (
        "/v1/nodes/{node}/bios/{setting}",
        "get",
        "One BIOS setting",
        40,
        200,
    ),
    (
        "/v1/nodes/{node}/inventory",
        "get",
        "Inspection inventory",
        81,
        200,
    ),
    ("/v1/nodes/{node}/children", "get", "Child nodes", 83, 200),
    (
        "/v1/nodes/{node}/firmware",
        "get",
        "Firmware components",
        86,
        200,
    ),
    (
        "/v1/nodes/{node}/allocation",
        "get",
        "The node's allocation",
        52,
        200,
    ),
    (
        "/v1/nodes/{node}/allocation",
        "delete",
        "Delete the node's allocation",
        52,
        204,
    ),
    (
        "/v1/nodes/{node}/vendor_passthru/methods",
        "get",
        "Vendor methods",
        1,
        200,
    ),
    (
        "/v1/nodes/{node}/vendor_passthru",
        "post",
        "Call a vendor method",
        1,
        200,
    ),
    (
        "/v1/nodes/{node}/volume",
        "get",
        "Volume resources of a node",
        32,
        200,
    ),
    (
        "/v1/nodes/{node}/volume/connectors",
        "get",
        "Volume connectors of a node",
        32,
        200,
    ),
    (
        "/v1/nodes/{node}/volume/targets",
        "get",
        "Volume targets of a node",
        32,
        200,
    ),
    ("/v1/ports", "get", "List ports", 1, 200),
    ("/v1/ports", "post", "Create a port", 1, 201),
    ("/v1/ports/detail", "get", "List ports with details", 1, 200),
    ("/v1/ports/{port}", "get", "Show a port", 1, 200),
    ("/v1/ports/{port}", "patch", "Update a port", 1, 200),
    ("/v1/ports/{port}", "delete", "Delete a port", 1, 204),
    ("/v1/portgroups", "get", "List port groups", 23, 200),
    ("/v1/portgroups", "post", "Create a port group", 23, 201),
    (
        "/v1/portgroups/detail",
        "get",
        "List port groups with details",
        23,
        200,
    ),
    ("/v1/portgroups/{pg}", "get", "Show a port group", 23, 200),
    (
        "/v1/portgroups/{pg}",
        "patch",
        "Update a port group",
        23,
        200,
    ),
    (
        "/v1/portgroups/{pg}",
        "delete",
        "Delete a port group",
        23,
        204,
    ),
    (
        "/v1/portgroups/{pg}/ports",
        "get",
        "Ports of a port group",
        24,
        200,
    ),
    ("/v1/chassis", "get", "List chassis", 1, 200),
    ("/v1/chassis", "post", "Create a chassis", 1, 201),
    (
        "/v1/chassis/detail",
        "get",
        "List chassis with details",
        1,
        200,
    ),
    ("/v1/chassis/{id}", "get", "Show a chassis", 1, 200),
    ("/v1/chassis/{id}", "patch", "Update a chassis", 1, 200),
    ("/v1/chassis/{id}", "delete", "Delete a chassis", 1, 204),
    (
        "/v1/chassis/{id}/nodes",
        "get",
        "Nodes of a chassis",
        1,
        200,
    ),
    (
        "/v1/drivers",
        "get",
        "List drivers (hardware types)",
        1,
        200,
    ),
    ("/v1/drivers/{name}", "get", "Show a driver", 1, 200),
    (
        "/v1/drivers/{name}/properties",
        "get",
        "driver_info properties",
        1,
        200,
    ),
    (
        "/v1/drivers/{name}/raid/logical_disk_properties",
        "get",
        "RAID logical disk properties",
        12,
        200,
    ),
    ("/v1/conductors", "get", "List conductors", 49, 200),
    ("/v1/conductors/{host}", "get", "Show a conductor", 49, 200),
    ("/v1/allocations", "get", "List allocations", 52, 200),
    ("/v1/allocations", "post", "Create an allocation", 52, 201),
    ("/v1/allocations/{id}", "get", "Show an allocation", 52, 200),
    (
        "/v1/allocations/{id}",
        "patch",
        "Update an allocation",
        57,
        200,
    ),
    (
        "/v1/allocations/{id}",
        "delete",
        "Delete an allocation",
        52,
        204,
    ),
    (
        "/v1/deploy_templates",
        "get",
        "List deploy templates",
        55,
        200,
    ),
    (
        "/v1/deploy_templates",
        "post",
        "Create a deploy template",
        55,
        201,
    ),
    (
        "/v1/deploy_templates/{id}",
        "get",
        "Show a deploy template",
        55,
        200,
    ),
    (
        "/v1/deploy_templates/{id}",
        "patch",
        "Update a deploy template",
        55,
        200,
    ),
    (
        "/v1/deploy_templates/{id}",
        "delete",
        "Delete a deploy template",
        55,
        204,
    ),
    ("/v1/volume", "get", "Volume resources", 32, 200),
    (
        "/v1/volume/connectors",
        "get",
        "List volume connectors",
        32,
        200,
    ),
    (
        "/v1/volume/connectors",
        "post",
        "Create a volume connector",
        32,
        201,
    ),
    (
        "/v1/volume/connectors/{id}",
        "get",
        "Show a volume connector",
        32,
        200,
    ),
    (
        "/v1/volume/connectors/{id}",
        "patch",
        "Update a volume connector",
        32,
        200,
    ),
    (
        "/v1/volume/connectors/{id}",
        "delete",
        "Delete a volume connector",
        32,
        204,
    ),
    ("/v1/volume/targets", "get", "List volume targets", 32, 200),
    (
        "/v1/volume/targets",
        "post",
        "Create a volume target",
        32,
        201,
    ),
    (
        "/v1/volume/targets/{id}",
        "get",
        "Show a volume target",
        32,
        200,
    ),
    (
        "/v1/volume/targets/{id}",
        "patch",
        "Update a volume target",
        32,
        200,
    ),
    (
        "/v1/volume/targets/{id}",
        "delete",
        "Delete a volume target",
        32,
        204,
    ),
    ("/v1/runbooks", "get", "List runbooks", 92, 200),
    ("/v1/runbooks", "post", "Create a runbook", 92, 201),
    ("/v1/runbooks/{id}", "get", "Show a runbook", 92, 200),
    ("/v1/runbooks/{id}", "patch", "Update a runbook", 92, 200),
    ("/v1/runbooks/{id}", "delete", "Delete a runbook", 92, 204),
    ("/v1/events", "post", "Network events", 54, 204),
    ("/v1/shards", "get", "Shards and node counts", 82, 200),
    ("/v1/lookup", "get", "Agent lookup", 22, 200),
    ("/v1/heartbeat/{node}", "post", "Agent heartbeat", 22, 202),
    (
        "/v1/continue_inspection",
        "post",
        "In-band inspection data",
        84,
        200,
    ),
];

/// The document for `base` (the server URL).
pub fn document(base: &str) -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for (path, method, summary, since, status) in OPERATIONS {
        let entry = paths
            .entry(path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .chain(std::iter::once(json!({
                "name": "X-OpenStack-Ironic-API-Version", "in": "header", "required": false,
                "description": "Requested microversion (1.N or latest); 1.1 when absent.",
                "schema": {"type": "string"}
            })))
            .collect();
        let mut responses = Map::new();
        let body = if *status == 200 || *status == 201 {
            json!({"description": "Success", "content": {"application/json": {"schema": {"type": "object"}}}})
        } else {
            json!({"description": "Success (no body)"})
        };
        responses.insert(status.to_string(), body);
        for code in ["400", "404", "406", "409"] {
            responses.insert(
                code.into(),
                json!({"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
            );
        }
        let mut op = json!({
            "summary": summary,
            "description": format!("Available since microversion 1.{since}."),
            "operationId": format!("{method}_{}", path.trim_matches('/').replace(['/', '{', '}', '.'], "_")),
            "parameters": params,
            "responses": responses,
        });
        if matches!(*method, "post" | "put" | "patch") {
            let schema = if *method == "patch" {
                json!({"type": "array", "items": {"$ref": "#/components/schemas/PatchOperation"}})
            } else {
                json!({"type": "object"})
            };
            op["requestBody"] =
                json!({"required": false, "content": {"application/json": {"schema": schema}}});
        }
        if let Value::Object(m) = entry {
            m.insert(method.to_string(), op);
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "ironic-rs Bare Metal API",
            "version": MAX.to_string(),
            "description": format!(
                "Ironic-compatible v1 REST API, microversions {MIN} to {MAX}. Errors carry {{\"error_message\": \"<JSON string>\"}}."
            ),
        },
        "servers": [{"url": base}],
        "paths": paths,
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error_message"],
                      "properties": {"error_message": {"type": "string",
                        "description": "A JSON document encoded as a string: {faultcode, faultstring, debuginfo}"}}},
            "PatchOperation": {"type": "object", "required": ["op", "path"],
                "properties": {"op": {"type": "string", "enum": ["add", "replace", "remove"]},
                               "path": {"type": "string"}, "value": {}}}
        }}
    })
}

/// `GET /v1/openapi.json`.
pub async fn serve(ctx: ReqCtx) -> ApiResult<Response> {
    ok_value(&document(&ctx.base))
}

//! The OpenAPI 3.1 document of `/client/v4`, generated from the code: the operations are the
//! table below (a test checks that each is routed), and every request body schema is derived
//! from the very `vantage-wire` type its handler parses, so the document cannot drift from
//! what the server accepts.

use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};
use vantage_wire::{load_balancer, monitor, monitor_group, notification, pool, zone};

type BodySchema = fn(&mut SchemaGenerator) -> schemars::Schema;

/// One operation: method, path under `/client/v4`, summary, tag, request body, list or not.
#[derive(Debug)]
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    pub body: Option<BodySchema>,
    pub list: bool,
}

fn body<T: JsonSchema>(g: &mut SchemaGenerator) -> schemars::Schema {
    g.subschema_for::<T>()
}

fn any_object(_: &mut SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object"})
}

const LB: &str = "/accounts/{account_id}/load_balancers";

macro_rules! op {
    ($m:literal, $p:expr, $s:literal, $t:literal) => {
        Operation {
            method: $m,
            path: $p,
            summary: $s,
            tag: $t,
            body: None,
            list: false,
        }
    };
    ($m:literal, $p:expr, $s:literal, $t:literal, list) => {
        Operation {
            method: $m,
            path: $p,
            summary: $s,
            tag: $t,
            body: None,
            list: true,
        }
    };
    ($m:literal, $p:expr, $s:literal, $t:literal, $b:expr) => {
        Operation {
            method: $m,
            path: $p,
            summary: $s,
            tag: $t,
            body: Some($b),
            list: false,
        }
    };
}

/// Every operation of the Cloudflare-compatible API, built once: the paths are made at run
/// time from shared prefixes and live as long as the process.
pub fn operations() -> &'static [Operation] {
    static OPERATIONS: std::sync::OnceLock<Vec<Operation>> = std::sync::OnceLock::new();
    OPERATIONS.get_or_init(build_operations)
}

fn build_operations() -> Vec<Operation> {
    let lb = |rest: &str| -> &'static str { Box::leak(format!("{LB}{rest}").into_boxed_str()) };
    let alerting = |rest: &str| -> &'static str {
        Box::leak(format!("/accounts/{{account_id}}/alerting/v3{rest}").into_boxed_str())
    };
    vec![
        op!("get", "/accounts", "List accounts", "Accounts", list),
        op!(
            "get",
            "/accounts/{account_id}",
            "Account details",
            "Accounts"
        ),
        op!("get", "/user/tokens/verify", "Verify the token", "Accounts"),
        op!("get", "/zones", "List zones", "Zones", list),
        op!(
            "post",
            "/zones",
            "Create a zone",
            "Zones",
            body::<zone::ZoneIn>
        ),
        op!("get", "/zones/{zone_id}", "Zone details", "Zones"),
        op!("delete", "/zones/{zone_id}", "Delete a zone", "Zones"),
        op!(
            "get",
            "/zones/{zone_id}/load_balancers",
            "List load balancers",
            "Load balancers",
            list
        ),
        op!(
            "post",
            "/zones/{zone_id}/load_balancers",
            "Create a load balancer",
            "Load balancers",
            body::<load_balancer::LoadBalancerIn>
        ),
        op!(
            "get",
            "/zones/{zone_id}/load_balancers/{lb_id}",
            "Load balancer details",
            "Load balancers"
        ),
        op!(
            "put",
            "/zones/{zone_id}/load_balancers/{lb_id}",
            "Replace a load balancer",
            "Load balancers",
            body::<load_balancer::LoadBalancerIn>
        ),
        op!(
            "patch",
            "/zones/{zone_id}/load_balancers/{lb_id}",
            "Update a load balancer",
            "Load balancers",
            body::<load_balancer::LoadBalancerIn>
        ),
        op!(
            "delete",
            "/zones/{zone_id}/load_balancers/{lb_id}",
            "Delete a load balancer",
            "Load balancers"
        ),
        op!(
            "get",
            lb(""),
            "List the account's load balancers",
            "Load balancers",
            list
        ),
        op!(
            "post",
            lb(""),
            "Create a load balancer in the account's zone its name falls in",
            "Load balancers",
            body::<load_balancer::LoadBalancerIn>
        ),
        op!(
            "get",
            lb("/{lb_id}"),
            "Load balancer details (by account)",
            "Load balancers"
        ),
        op!(
            "put",
            lb("/{lb_id}"),
            "Replace a load balancer (by account)",
            "Load balancers",
            body::<load_balancer::LoadBalancerIn>
        ),
        op!(
            "patch",
            lb("/{lb_id}"),
            "Update a load balancer (by account)",
            "Load balancers",
            body::<load_balancer::LoadBalancerIn>
        ),
        op!(
            "delete",
            lb("/{lb_id}"),
            "Delete a load balancer (by account)",
            "Load balancers"
        ),
        op!("get", lb("/monitors"), "List monitors", "Monitors", list),
        op!(
            "post",
            lb("/monitors"),
            "Create a monitor",
            "Monitors",
            body::<monitor::MonitorIn>
        ),
        op!(
            "get",
            lb("/monitors/{monitor_id}"),
            "Monitor details",
            "Monitors"
        ),
        op!(
            "put",
            lb("/monitors/{monitor_id}"),
            "Replace a monitor",
            "Monitors",
            body::<monitor::MonitorIn>
        ),
        op!(
            "patch",
            lb("/monitors/{monitor_id}"),
            "Update a monitor",
            "Monitors",
            body::<monitor::MonitorIn>
        ),
        op!(
            "delete",
            lb("/monitors/{monitor_id}"),
            "Delete a monitor",
            "Monitors"
        ),
        op!(
            "get",
            lb("/monitors/{monitor_id}/references"),
            "Monitor references",
            "Monitors",
            list
        ),
        op!(
            "post",
            lb("/monitors/{monitor_id}/preview"),
            "Preview a monitor",
            "Monitors",
            body::<monitor::MonitorIn>
        ),
        op!(
            "get",
            lb("/monitor_groups"),
            "List monitor groups",
            "Monitor groups",
            list
        ),
        op!(
            "post",
            lb("/monitor_groups"),
            "Create a monitor group",
            "Monitor groups",
            body::<monitor_group::MonitorGroupIn>
        ),
        op!(
            "get",
            lb("/monitor_groups/{monitor_group_id}"),
            "Monitor group details",
            "Monitor groups"
        ),
        op!(
            "put",
            lb("/monitor_groups/{monitor_group_id}"),
            "Replace a monitor group",
            "Monitor groups",
            body::<monitor_group::MonitorGroupIn>
        ),
        op!(
            "patch",
            lb("/monitor_groups/{monitor_group_id}"),
            "Update a monitor group",
            "Monitor groups",
            body::<monitor_group::MonitorGroupIn>
        ),
        op!(
            "delete",
            lb("/monitor_groups/{monitor_group_id}"),
            "Delete a monitor group",
            "Monitor groups"
        ),
        op!(
            "get",
            lb("/monitor_groups/{monitor_group_id}/references"),
            "Monitor group references",
            "Monitor groups",
            list
        ),
        op!("get", lb("/pools"), "List pools", "Pools", list),
        op!(
            "post",
            lb("/pools"),
            "Create a pool",
            "Pools",
            body::<pool::PoolIn>
        ),
        op!(
            "patch",
            lb("/pools"),
            "Update pools (notification email)",
            "Pools",
            any_object
        ),
        op!("get", lb("/pools/{pool_id}"), "Pool details", "Pools"),
        op!(
            "put",
            lb("/pools/{pool_id}"),
            "Replace a pool",
            "Pools",
            body::<pool::PoolIn>
        ),
        op!(
            "patch",
            lb("/pools/{pool_id}"),
            "Update a pool",
            "Pools",
            body::<pool::PoolIn>
        ),
        op!("delete", lb("/pools/{pool_id}"), "Delete a pool", "Pools"),
        op!(
            "get",
            lb("/pools/{pool_id}/references"),
            "Pool references",
            "Pools",
            list
        ),
        op!("get", lb("/pools/{pool_id}/health"), "Pool health", "Pools"),
        op!(
            "post",
            lb("/pools/{pool_id}/preview"),
            "Preview a pool",
            "Pools",
            body::<monitor::MonitorIn>
        ),
        op!(
            "get",
            lb("/preview/{preview_id}"),
            "Preview result",
            "Monitors"
        ),
        op!("get", lb("/regions"), "List regions", "Regions"),
        op!(
            "get",
            lb("/regions/{region_id}"),
            "Region details",
            "Regions"
        ),
        op!("get", lb("/search"), "Search resources", "Monitors"),
        op!(
            "get",
            lb("/probe_locations"),
            "Probe locations (Vantage extension)",
            "Pools",
            list
        ),
        op!(
            "get",
            lb("/edges"),
            "Edges following this controller (Vantage extension)",
            "Load balancers",
            list
        ),
        op!(
            "get",
            "/user/load_balancing_analytics/events",
            "Health events",
            "Analytics",
            list
        ),
        op!(
            "get",
            alerting("/destinations/webhooks"),
            "List webhook destinations",
            "Notifications",
            list
        ),
        op!(
            "post",
            alerting("/destinations/webhooks"),
            "Create a webhook destination",
            "Notifications",
            body::<notification::WebhookIn>
        ),
        op!(
            "get",
            alerting("/destinations/webhooks/{id}"),
            "Webhook destination details",
            "Notifications"
        ),
        op!(
            "put",
            alerting("/destinations/webhooks/{id}"),
            "Replace a webhook destination",
            "Notifications",
            body::<notification::WebhookIn>
        ),
        op!(
            "delete",
            alerting("/destinations/webhooks/{id}"),
            "Delete a webhook destination",
            "Notifications"
        ),
        op!(
            "get",
            alerting("/policies"),
            "List notification policies",
            "Notifications",
            list
        ),
        op!(
            "post",
            alerting("/policies"),
            "Create a notification policy",
            "Notifications",
            body::<notification::PolicyIn>
        ),
        op!(
            "get",
            alerting("/policies/{id}"),
            "Notification policy details",
            "Notifications"
        ),
        op!(
            "put",
            alerting("/policies/{id}"),
            "Replace a notification policy",
            "Notifications",
            body::<notification::PolicyIn>
        ),
        op!(
            "delete",
            alerting("/policies/{id}"),
            "Delete a notification policy",
            "Notifications"
        ),
        op!(
            "get",
            alerting("/history"),
            "Notification history",
            "Notifications",
            list
        ),
    ]
}

fn envelope() -> Value {
    json!({
        "type": "object",
        "required": ["success", "errors", "messages", "result"],
        "properties": {
            "success": {"type": "boolean"},
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
            "messages": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
            "result": {},
            "result_info": {"type": "object"},
        },
    })
}

/// The whole document.
/// The document, rendered once and shared (it depends on nothing that changes).
pub fn document() -> &'static Value {
    static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(render)
}

fn render() -> Value {
    let settings = schemars::generate::SchemaSettings::draft2020_12().with(|s| {
        s.definitions_path = "/components/schemas".into();
        s.meta_schema = None;
    });
    let mut gen = SchemaGenerator::new(settings);
    let mut paths = Map::new();
    for op in operations() {
        let params: Vec<Value> = op
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .chain(op.list.then(|| {
                [
                    json!({"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}}),
                    json!({"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1}}),
                ]
            }).into_iter().flatten())
            .collect();
        let mut operation = json!({
            "summary": op.summary,
            "tags": [op.tag],
            "operationId": format!("{}{}", op.method, op.path.replace(['/', '{', '}'], "_")),
            "parameters": params,
            "responses": {
                "200": {"description": "Success", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}},
                "default": {"description": "A Cloudflare error envelope", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}},
            },
        });
        if let Some(schema) = op.body {
            operation["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": schema(&mut gen)}},
            });
        }
        paths
            .entry(op.path.to_owned())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|m| m.insert(op.method.to_owned(), operation));
    }
    let mut schemas: Map<String, Value> = gen
        .definitions()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    schemas.insert("Envelope".into(), envelope());
    schemas.insert(
        "Message".into(),
        json!({"type": "object", "properties": {"code": {"type": "integer"}, "message": {"type": "string"}}}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Vantage — Cloudflare-compatible Load Balancing API",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "servers": [{"url": "/client/v4"}],
        "security": [{"bearer": []}, {"global_key": [], "email": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "global_key": {"type": "apiKey", "in": "header", "name": "X-Auth-Key"},
                "email": {"type": "apiKey", "in": "header", "name": "X-Auth-Email"},
            },
        },
    })
}

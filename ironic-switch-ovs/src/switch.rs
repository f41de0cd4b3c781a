//! `OvsSwitch`: one Open vSwitch bridge as a [`Switch`].
//!
//! How the contract maps onto the `Open_vSwitch` database:
//! * access VLAN: `Port.vlan_mode=access`, `tag=N`;
//! * trunk with a native VLAN: `vlan_mode=native-untagged`, `tag=native`,
//!   `trunks=allowed+native`; without: `vlan_mode=trunk`, `trunks=allowed`;
//! * MTU: `Interface.mtu_request` of the port's interface(s);
//! * shut: OVS keeps no administrative port state in its database, so a shut port is
//!   parked: `tag=4095` (a VLAN the contract never hands out) and `protected=true`
//!   (protected ports cannot reach each other, and only parked ports are ever on
//!   4095), with the configured VLANs kept in `external_ids` for `no shutdown`;
//! * LAG: one `Port` with several `Interface`s (`bond_mode=balance-tcp` and
//!   `lacp=active|passive`, or `balance-slb` without LACP for a static LAG);
//!   members leaving a LAG become standalone ports again, parked.
//!
//! Every change is one OVSDB transaction that also bumps `next_cfg`; the call
//! returns once ovs-vswitchd reports it applied (`cur_cfg`), as `ovs-vsctl` waits.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ironic_core::DriverError;
use ironic_core::driver::PropertyDoc;
use ironic_core::switch::{
    LagConfig, LagMode, PortConfig, PortStatus, Switch, SwitchCapabilities, SwitchConfig,
    SwitchDriver, VlanMode,
};
use serde_json::{Value, json};

use crate::client::{Client, DB, Endpoint};
use crate::error::OvsError;
use crate::ovsdb::{self, elements, map, map_of, opt_int, opt_str, rows, set, uuids};

/// The VLAN parked (shut) ports sit on.
pub const PARKING_VLAN: u16 = 4095;
/// The default OVSDB address.
pub const DEFAULT_ADDRESS: &str = "unix:/var/run/openvswitch/db.sock";

const K_SHUT: &str = "ironic-rs-shut";
const K_VLAN: &str = "ironic-rs-vlan";
const K_DESC: &str = "ironic-rs-description";
const K_LAG: &str = "ironic-rs-lag";
const PORT_COLS: &[&str] = &[
    "_uuid",
    "name",
    "tag",
    "trunks",
    "vlan_mode",
    "protected",
    "external_ids",
    "interfaces",
    "bond_mode",
    "lacp",
];

/// The settings of one OVS switch, from a [`SwitchConfig`].
#[derive(Clone, Debug, PartialEq)]
pub struct OvsSettings {
    /// Where ovsdb-server listens.
    pub endpoint: Endpoint,
    /// The bridge that is this switch.
    pub bridge: String,
    /// Timeout of one OVSDB request.
    pub timeout: Duration,
    /// How long to wait for ovs-vswitchd to apply a change.
    pub apply_timeout: Duration,
}

fn secs(cfg: &SwitchConfig, key: &str, default: u64) -> Result<Duration, OvsError> {
    match cfg.option(key) {
        None => Ok(Duration::from_secs(default)),
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|s| *s > 0.0 && s.is_finite())
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                OvsError::Invalid(format!(
                    "options.{key} = {v:?}: expected a positive number of seconds"
                ))
            }),
    }
}

impl OvsSettings {
    /// Parse (no I/O): `address` (default the local `db.sock`), `options.bridge`
    /// (required), `options.timeout` (10 s), `options.apply_timeout` (30 s).
    pub fn parse(cfg: &SwitchConfig) -> Result<OvsSettings, OvsError> {
        let address = if cfg.address.trim().is_empty() {
            DEFAULT_ADDRESS
        } else {
            cfg.address.trim()
        };
        let bridge = cfg
            .option("bridge")
            .filter(|b| !b.trim().is_empty())
            .ok_or_else(|| {
                OvsError::Invalid(format!(
                    "switch {:?}: options.bridge is required (the OVS bridge this switch is)",
                    cfg.name
                ))
            })?;
        if cfg.password.is_some() || cfg.username.is_some() {
            return Err(OvsError::Invalid(format!(
                "switch {:?}: the ovs driver takes no username or password (OVSDB over unix: or tcp: has no login)",
                cfg.name
            )));
        }
        Ok(OvsSettings {
            endpoint: Endpoint::parse(address)?,
            bridge,
            timeout: secs(cfg, "timeout", 10)?,
            apply_timeout: secs(cfg, "apply_timeout", 30)?,
        })
    }
}

/// An OVS bridge as a switch.
#[derive(Debug)]
pub struct OvsSwitch {
    name: String,
    settings: OvsSettings,
    client: Client,
}

/// A port row as read.
#[derive(Clone, Debug)]
struct PortRow {
    uuid: String,
    name: String,
    row: Value,
}

impl PortRow {
    fn from(row: &Value) -> Option<PortRow> {
        Some(PortRow {
            uuid: row.get("_uuid").and_then(ovsdb::uuid_of)?,
            name: row.get("name")?.as_str()?.to_owned(),
            row: row.clone(),
        })
    }
    fn ext(&self) -> BTreeMap<String, String> {
        self.row
            .get("external_ids")
            .map(map_of)
            .unwrap_or_default()
            .into_iter()
            .collect()
    }
    fn interfaces(&self) -> Vec<String> {
        self.row.get("interfaces").map(uuids).unwrap_or_default()
    }
    fn is_lag(&self) -> bool {
        self.ext().get(K_LAG).map(String::as_str) == Some("true") || self.interfaces().len() > 1
    }
    fn config(&self, mtu: Option<u32>) -> PortConfig {
        let ext = self.ext();
        let tag = self.row.get("tag").and_then(opt_int);
        let trunks: Vec<u16> = self
            .row
            .get("trunks")
            .map(elements)
            .unwrap_or_default()
            .iter()
            .filter_map(Value::as_u64)
            .map(|v| v as u16)
            .collect();
        let protected = self.row.get("protected").and_then(Value::as_bool) == Some(true);
        let description = ext.get(K_DESC).cloned();
        if ext.get(K_SHUT).map(String::as_str) == Some("true")
            && tag == Some(i64::from(PARKING_VLAN))
            && protected
        {
            let vlan = ext
                .get(K_VLAN)
                .and_then(|v| serde_json::from_str::<Option<VlanMode>>(v).ok())
                .flatten();
            return PortConfig {
                vlan,
                mtu,
                enabled: false,
                description,
            };
        }
        let mode = self.row.get("vlan_mode").and_then(opt_str);
        let vlan = match (mode.as_deref(), tag) {
            (Some("access"), Some(t)) | (None, Some(t)) => Some(VlanMode::access(t as u16)),
            (Some("native-untagged" | "native-tagged"), Some(t)) => {
                Some(VlanMode::trunk(Some(t as u16), trunks))
            }
            (Some("trunk") | None, None) if !trunks.is_empty() => {
                Some(VlanMode::trunk(None, trunks))
            }
            _ => None,
        };
        PortConfig {
            vlan,
            mtu,
            enabled: true,
            description,
        }
    }
}

/// The `Port` columns that express `c`, and the `external_ids` keys to set.
fn port_row(c: &PortConfig) -> (Value, Vec<(&'static str, String)>) {
    let none = set([]);
    let mut ext = Vec::new();
    if let Some(d) = &c.description {
        ext.push((K_DESC, d.clone()));
    }
    if !c.enabled {
        ext.push((K_SHUT, "true".into()));
        ext.push((
            K_VLAN,
            serde_json::to_string(&c.vlan).unwrap_or_else(|_| "null".into()),
        ));
        let row =
            json!({"tag": PARKING_VLAN, "trunks": none, "vlan_mode": "access", "protected": true});
        return (row, ext);
    }
    let row = match c.vlan.as_ref().map(VlanMode::normalized) {
        None => json!({"tag": none, "trunks": none, "vlan_mode": none, "protected": false}),
        Some(VlanMode::Access { vlan }) => {
            json!({"tag": vlan, "trunks": none, "vlan_mode": "access", "protected": false})
        }
        Some(VlanMode::Trunk {
            native_vlan: Some(n),
            allowed_vlans,
        }) => {
            let trunks: BTreeSet<u16> = allowed_vlans.into_iter().chain([n]).collect();
            json!({"tag": n, "trunks": set(trunks.into_iter().map(|v| json!(v))),
                   "vlan_mode": "native-untagged", "protected": false})
        }
        Some(VlanMode::Trunk {
            native_vlan: None,
            allowed_vlans,
        }) => json!({"tag": none, "trunks": set(allowed_vlans.into_iter().map(|v| json!(v))),
                      "vlan_mode": "trunk", "protected": false}),
    };
    (row, ext)
}

fn lag_columns(mode: LagMode) -> Value {
    match mode {
        LagMode::Static => json!({"bond_mode": "balance-slb", "lacp": "off"}),
        LagMode::LacpActive => json!({"bond_mode": "balance-tcp", "lacp": "active"}),
        LagMode::LacpPassive => json!({"bond_mode": "balance-tcp", "lacp": "passive"}),
    }
}

/// Operations writing config `c` (VLANs, parking, description) to the port row `id`.
fn write_port_ops(id: &str, c: &PortConfig) -> Vec<Value> {
    let (row, ext) = port_row(c);
    let keys = set([K_SHUT, K_VLAN, K_DESC].map(|k| json!(k)));
    let mut ops = vec![
        ovsdb::update_uuid("Port", id, row),
        ovsdb::mutate_uuid("Port", id, json!([["external_ids", "delete", keys]])),
    ];
    if !ext.is_empty() {
        ops.push(ovsdb::mutate_uuid(
            "Port",
            id,
            json!([["external_ids", "insert", map(ext)]]),
        ));
    }
    ops
}

fn mtu_value(mtu: Option<u32>) -> Value {
    mtu.map_or_else(|| set([]), |m| json!(m))
}

impl OvsSwitch {
    /// A switch over `settings` (no I/O).
    pub fn new(name: impl Into<String>, settings: OvsSettings) -> Self {
        let client = Client::new(settings.endpoint.clone(), settings.timeout);
        OvsSwitch {
            name: name.into(),
            settings,
            client,
        }
    }

    /// The bridge.
    pub fn bridge(&self) -> &str {
        &self.settings.bridge
    }

    /// Run a writing transaction, bumping `next_cfg`, and wait until ovs-vswitchd
    /// applied it.
    async fn commit(&self, mut ops: Vec<Value>) -> Result<(), OvsError> {
        ops.push(
            json!({"op": "mutate", "table": DB, "where": [], "mutations": [["next_cfg", "+=", 1]]}),
        );
        ops.push(json!({"op": "select", "table": DB, "where": [], "columns": ["next_cfg"]}));
        let n = ops.len();
        let res = self.client.transact(ops).await?;
        let next = res
            .get(n - 1)
            .map(rows)
            .and_then(|r| {
                r.first()
                    .and_then(|r| r.get("next_cfg"))
                    .and_then(Value::as_i64)
            })
            .ok_or_else(|| OvsError::Protocol("no next_cfg in the transaction result".into()))?;
        self.client
            .wait_applied(next, self.settings.apply_timeout)
            .await
    }

    /// The bridge's row: its UUID and its ports' UUIDs.
    fn bridge_of(&self, res: &Value) -> Result<(String, BTreeSet<String>), OvsError> {
        let r = rows(res);
        let row = r.first().ok_or_else(|| {
            OvsError::NotFound(format!(
                "switch {}: OVS bridge {} does not exist",
                self.name, self.settings.bridge
            ))
        })?;
        let id = row
            .get("_uuid")
            .and_then(ovsdb::uuid_of)
            .ok_or_else(|| OvsError::Protocol("bridge row without _uuid".into()))?;
        let ports = row.get("ports").map(uuids).unwrap_or_default();
        Ok((id, ports.into_iter().collect()))
    }

    fn bridge_select(&self) -> Value {
        ovsdb::select_eq(
            "Bridge",
            "name",
            json!(self.settings.bridge),
            &["_uuid", "ports"],
        )
    }

    fn not_found(&self, port: &str) -> OvsError {
        OvsError::NotFound(format!(
            "switch {} (OVS bridge {}) has no port {port}",
            self.name, self.settings.bridge
        ))
    }

    /// Read the bridge and the named ports (on this bridge) and interfaces.
    async fn read(
        &self,
        names: &[&str],
    ) -> Result<
        (
            String,
            BTreeSet<String>,
            Vec<Option<PortRow>>,
            Vec<Option<(String, Value)>>,
        ),
        OvsError,
    > {
        let mut ops = vec![self.bridge_select()];
        for n in names {
            ops.push(ovsdb::select_eq("Port", "name", json!(n), PORT_COLS));
            ops.push(ovsdb::select_eq(
                "Interface",
                "name",
                json!(n),
                &["_uuid", "mtu_request", "link_state"],
            ));
        }
        let res = self.client.transact(ops).await?;
        let (br, ports) = self.bridge_of(&res[0])?;
        let mut prow = Vec::new();
        let mut irow = Vec::new();
        for i in 0..names.len() {
            let p = rows(&res[1 + 2 * i])
                .first()
                .and_then(PortRow::from)
                .filter(|p| ports.contains(&p.uuid));
            prow.push(p);
            let iface = rows(&res[2 + 2 * i])
                .first()
                .and_then(|r| Some((r.get("_uuid").and_then(ovsdb::uuid_of)?, r.clone())));
            irow.push(iface);
        }
        Ok((br, ports, prow, irow))
    }

    /// The LAG port (on this bridge) holding interface `iface`, if any.
    async fn lag_holding(
        &self,
        iface: &str,
        ports: &BTreeSet<String>,
    ) -> Result<Option<PortRow>, OvsError> {
        let res = self
            .client
            .transact(vec![json!({"op": "select", "table": "Port",
                "where": [["interfaces", "includes", ovsdb::uuid(iface)]], "columns": PORT_COLS})])
            .await?;
        Ok(rows(&res[0])
            .iter()
            .filter_map(PortRow::from)
            .find(|p| ports.contains(&p.uuid)))
    }

    /// Interface rows by UUID.
    async fn interfaces(&self, ids: &[String]) -> Result<Vec<Value>, OvsError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ops = ids
            .iter()
            .map(|id| {
                ovsdb::select_eq(
                    "Interface",
                    "_uuid",
                    ovsdb::uuid(id),
                    &["_uuid", "name", "mtu_request", "link_state"],
                )
            })
            .collect();
        let res = self.client.transact(ops).await?;
        Ok(res
            .iter()
            .filter_map(|r| rows(r).into_iter().next())
            .collect())
    }

    async fn status_of(&self, p: &PortRow, lag: Option<String>) -> Result<PortStatus, OvsError> {
        let ifaces = self.interfaces(&p.interfaces()).await?;
        let mtu = ifaces
            .first()
            .and_then(|i| i.get("mtu_request"))
            .and_then(opt_int)
            .map(|m| m as u32);
        let link = ifaces
            .iter()
            .filter_map(|i| i.get("link_state").and_then(opt_str))
            .map(|s| s == "up")
            .reduce(|a, b| a || b);
        Ok(PortStatus {
            config: p.config(mtu).normalized(),
            lag,
            link_up: link,
        })
    }

    async fn do_set_ports(&self, changes: &[(String, PortConfig)]) -> Result<(), OvsError> {
        let names: Vec<&str> = changes.iter().map(|(p, _)| p.as_str()).collect();
        let (_, ports, prows, irows) = self.read(&names).await?;
        let mut ops = Vec::new();
        for (i, (name, c)) in changes.iter().enumerate() {
            let Some(p) = &prows[i] else {
                if let Some((iface, _)) = &irows[i]
                    && let Some(lag) = self.lag_holding(iface, &ports).await?
                {
                    return Err(OvsError::Conflict(format!(
                        "port {name} of switch {} is a member of LAG {}: configure the LAG",
                        self.name, lag.name
                    )));
                }
                return Err(self.not_found(name));
            };
            ops.push(ovsdb::wait_named("Port", &p.uuid, name));
            ops.extend(write_port_ops(&p.uuid, c));
            for iface in p.interfaces() {
                ops.push(ovsdb::update_uuid(
                    "Interface",
                    &iface,
                    json!({"mtu_request": mtu_value(c.mtu)}),
                ));
            }
        }
        self.commit(ops).await
    }

    async fn do_set_lag(&self, lag: &str, cfg: &LagConfig) -> Result<(), OvsError> {
        let mut names: Vec<&str> = vec![lag];
        names.extend(cfg.members.iter().map(String::as_str));
        let (br, ports, prows, irows) = self.read(&names).await?;
        let existing = match &prows[0] {
            Some(p) if p.is_lag() => Some(p.clone()),
            Some(_) => {
                return Err(OvsError::Conflict(format!(
                    "switch {} already has a port named {lag} that is not a LAG",
                    self.name
                )));
            }
            None => None,
        };
        let current: Vec<Value> = match &existing {
            Some(p) => self.interfaces(&p.interfaces()).await?,
            None => Vec::new(),
        };
        let current_names: BTreeMap<String, String> = current
            .iter()
            .filter_map(|i| {
                Some((
                    i.get("name")?.as_str()?.to_owned(),
                    i.get("_uuid").and_then(ovsdb::uuid_of)?,
                ))
            })
            .collect();
        let mut ops = Vec::new();
        let mut member_ifaces = Vec::new();
        for (i, m) in cfg.members.iter().enumerate() {
            if m == lag {
                return Err(OvsError::Invalid(format!(
                    "LAG {lag} cannot be its own member"
                )));
            }
            let (prow, irow) = (&prows[i + 1], &irows[i + 1]);
            if let Some(id) = current_names.get(m) {
                member_ifaces.push(id.clone());
                continue;
            }
            let Some((iface, _)) = irow else {
                return Err(self.not_found(m));
            };
            match prow {
                Some(p) if p.is_lag() => {
                    return Err(OvsError::Invalid(format!("{m} is a LAG, not a port")));
                }
                Some(p) => {
                    // a standalone port joins: its Port row goes, its interface moves
                    ops.push(ovsdb::wait_named("Port", &p.uuid, m));
                    ops.push(ovsdb::mutate_uuid(
                        "Bridge",
                        &br,
                        json!([["ports", "delete", set([ovsdb::uuid(&p.uuid)])]]),
                    ));
                    ops.push(json!({"op": "delete", "table": "Port", "where": [["_uuid", "==", ovsdb::uuid(&p.uuid)]]}));
                    member_ifaces.push(iface.clone());
                }
                None => {
                    let owner = self.lag_holding(iface, &ports).await?;
                    return Err(match owner {
                        Some(o) => OvsError::Conflict(format!(
                            "port {m} of switch {} is already in LAG {}",
                            self.name, o.name
                        )),
                        None => self.not_found(m),
                    });
                }
            }
        }
        let ifaces = set(member_ifaces.iter().map(|i| ovsdb::uuid(i)));
        let mut cols = lag_columns(cfg.mode);
        cols["interfaces"] = ifaces;
        match &existing {
            Some(p) => {
                ops.push(ovsdb::update_uuid("Port", &p.uuid, cols));
                // members leaving come back standalone, parked
                for (name, id) in &current_names {
                    if !cfg.members.contains(name) {
                        ops.extend(self.standalone_ops(&br, name, id));
                    }
                }
            }
            None => {
                let (row, ext) = port_row(&PortConfig::shut());
                let mut row = row;
                for (k, v) in cols.as_object().into_iter().flatten() {
                    row[k] = v.clone();
                }
                let mut ext = ext;
                ext.push((K_LAG, "true".into()));
                row["name"] = json!(lag);
                row["external_ids"] = map(ext);
                ops.push(
                    json!({"op": "insert", "table": "Port", "row": row, "uuid-name": "newlag"}),
                );
                ops.push(ovsdb::mutate_uuid(
                    "Bridge",
                    &br,
                    json!([["ports", "insert", set([json!(["named-uuid", "newlag"])])]]),
                ));
            }
        }
        self.commit(ops).await
    }

    /// Operations giving interface `id` (named `name`) its own parked Port again.
    fn standalone_ops(&self, br: &str, name: &str, id: &str) -> Vec<Value> {
        let (mut row, ext) = port_row(&PortConfig::shut());
        row["name"] = json!(name);
        row["interfaces"] = ovsdb::uuid(id);
        row["external_ids"] = map(ext);
        let tag = format!("p{}", id.replace('-', ""));
        vec![
            json!({"op": "insert", "table": "Port", "row": row, "uuid-name": tag}),
            ovsdb::mutate_uuid(
                "Bridge",
                br,
                json!([["ports", "insert", set([json!(["named-uuid", tag])])]]),
            ),
        ]
    }

    async fn do_delete_lag(&self, lag: &str) -> Result<(), OvsError> {
        let (br, _, prows, _) = self.read(&[lag]).await?;
        let Some(p) = prows[0].clone() else {
            return Ok(());
        };
        if !p.is_lag() {
            return Err(OvsError::Conflict(format!(
                "port {lag} of switch {} is not a LAG",
                self.name
            )));
        }
        let members = self.interfaces(&p.interfaces()).await?;
        let mut ops = vec![
            ovsdb::wait_named("Port", &p.uuid, lag),
            ovsdb::mutate_uuid(
                "Bridge",
                &br,
                json!([["ports", "delete", set([ovsdb::uuid(&p.uuid)])]]),
            ),
            json!({"op": "delete", "table": "Port", "where": [["_uuid", "==", ovsdb::uuid(&p.uuid)]]}),
        ];
        for m in &members {
            if let (Some(name), Some(id)) = (
                m.get("name").and_then(Value::as_str),
                m.get("_uuid").and_then(ovsdb::uuid_of),
            ) {
                ops.extend(self.standalone_ops(&br, name, &id));
            }
        }
        self.commit(ops).await
    }
}

#[async_trait]
impl Switch for OvsSwitch {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> SwitchCapabilities {
        SwitchCapabilities {
            trunk: true,
            mtu: true,
            lag: true,
            lacp: true,
        }
    }

    async fn get_port(&self, port: &str) -> Result<PortStatus, DriverError> {
        let (_, ports, prows, irows) = self.read(&[port]).await?;
        if let Some(p) = &prows[0] {
            return Ok(self.status_of(p, None).await?);
        }
        if let Some((iface, _)) = &irows[0]
            && let Some(lag) = self.lag_holding(iface, &ports).await?
        {
            return Ok(self.status_of(&lag, Some(lag.name.clone())).await?);
        }
        Err(self.not_found(port).into())
    }

    async fn set_port(&self, port: &str, config: &PortConfig) -> Result<(), DriverError> {
        self.set_ports(&[(port.to_owned(), config.clone())]).await
    }

    async fn set_ports(&self, changes: &[(String, PortConfig)]) -> Result<(), DriverError> {
        for (p, c) in changes {
            self.validate_port(p, c)?;
        }
        if changes.is_empty() {
            return Ok(());
        }
        Ok(self.do_set_ports(changes).await?)
    }

    async fn list_ports(&self) -> Result<Vec<String>, DriverError> {
        let res = self
            .client
            .transact(vec![
                self.bridge_select(),
                json!({"op": "select", "table": "Port", "where": [], "columns": ["_uuid", "name"]}),
            ])
            .await?;
        let (_, ports) = self.bridge_of(&res[0])?;
        let mut names: Vec<String> = rows(&res[1])
            .iter()
            .filter_map(PortRow::from)
            .filter(|p| ports.contains(&p.uuid) && p.name != self.settings.bridge)
            .map(|p| p.name)
            .collect();
        names.sort();
        Ok(names)
    }

    async fn get_lag(&self, lag: &str) -> Result<Option<LagConfig>, DriverError> {
        let (_, _, prows, _) = self.read(&[lag]).await?;
        let Some(p) = prows[0].as_ref().filter(|p| p.is_lag()) else {
            return Ok(None);
        };
        let members: Vec<String> = self
            .interfaces(&p.interfaces())
            .await?
            .iter()
            .filter_map(|i| i.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect();
        let mode = match p.row.get("lacp").and_then(opt_str).as_deref() {
            Some("active") => LagMode::LacpActive,
            Some("passive") => LagMode::LacpPassive,
            _ => LagMode::Static,
        };
        Ok(Some(LagConfig::new(mode, members)))
    }

    async fn set_lag(&self, lag: &str, config: &LagConfig) -> Result<(), DriverError> {
        let config = config.normalized();
        config.validate()?;
        if lag.trim().is_empty() {
            return Err(DriverError::invalid("a LAG needs a name"));
        }
        Ok(self.do_set_lag(lag, &config).await?)
    }

    async fn delete_lag(&self, lag: &str) -> Result<(), DriverError> {
        Ok(self.do_delete_lag(lag).await?)
    }
}

/// The `ovs` switch driver.
#[derive(Clone, Copy, Debug, Default)]
pub struct OvsSwitchDriver;

impl SwitchDriver for OvsSwitchDriver {
    fn name(&self) -> &'static str {
        crate::NAME
    }

    fn properties(&self) -> Vec<PropertyDoc> {
        vec![
            PropertyDoc::required("bridge", "The OVS bridge that is this switch."),
            PropertyDoc::optional(
                "timeout",
                "Seconds to wait for an OVSDB answer (default 10).",
            ),
            PropertyDoc::optional(
                "apply_timeout",
                "Seconds to wait for ovs-vswitchd to apply a change (default 30).",
            ),
        ]
    }

    fn validate(&self, config: &SwitchConfig) -> Result<(), DriverError> {
        OvsSettings::parse(config).map(|_| ()).map_err(Into::into)
    }

    fn build(&self, config: &SwitchConfig) -> Result<Arc<dyn Switch>, DriverError> {
        let s = OvsSettings::parse(config)?;
        Ok(Arc::new(OvsSwitch::new(config.name.clone(), s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_or_name_the_key() {
        let mut c = SwitchConfig::new("tor", "ovs", "");
        let e = OvsSettings::parse(&c).unwrap_err().to_string();
        assert!(e.contains("options.bridge"), "{e}");
        c.options.insert("bridge", "br-lab");
        let s = OvsSettings::parse(&c).unwrap();
        assert_eq!(s.endpoint.to_string(), DEFAULT_ADDRESS);
        assert_eq!(s.timeout, Duration::from_secs(10));
        c.address = "tcp:127.0.0.1:6640".into();
        c.options.insert("apply_timeout", "2.5");
        let s = OvsSettings::parse(&c).unwrap();
        assert_eq!(s.endpoint, Endpoint::Tcp("127.0.0.1:6640".into()));
        assert_eq!(s.apply_timeout, Duration::from_millis(2500));
        c.options.insert("timeout", "soon");
        assert!(
            OvsSettings::parse(&c)
                .unwrap_err()
                .to_string()
                .contains("options.timeout")
        );
        c.address = "ssl:1.2.3.4:6640".into();
        assert!(OvsSettings::parse(&c).is_err());
        c.address = "tcp:nowhere".into();
        assert!(OvsSettings::parse(&c).is_err());
    }

    #[test]
    fn port_rows_round_trip_through_the_reader() {
        let cases = [
            PortConfig::access(100),
            PortConfig::trunk(Some(10), [20, 30]),
            PortConfig::trunk(Some(10), []),
            PortConfig::trunk(None, [7, 8]),
            PortConfig {
                enabled: false,
                ..PortConfig::access(300)
            },
            PortConfig::shut(),
            PortConfig::access(5).with_description("node-1 eth0"),
        ];
        for c in cases {
            let (row, ext) = port_row(&c);
            let mut row = row;
            row["_uuid"] = ovsdb::uuid("u");
            row["name"] = json!("p");
            row["external_ids"] = map(ext);
            let p = PortRow::from(&row).unwrap();
            assert_eq!(p.config(None), c.normalized(), "{row}");
        }
    }
}

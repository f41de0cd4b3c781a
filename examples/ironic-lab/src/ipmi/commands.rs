//! The IPMI commands the simulated BMC answers, acting on the shared server model.

use crate::model::{BootEnabled, BootMode, BootTarget, Power, ResetAction, SimServer};

use super::wire::Request;

/// Privilege levels (IPMI v2.0 table 6-1).
pub mod privilege {
    /// Callback.
    pub const CALLBACK: u8 = 1;
    /// User.
    pub const USER: u8 = 2;
    /// Operator.
    pub const OPERATOR: u8 = 3;
    /// Administrator.
    pub const ADMIN: u8 = 4;
}

/// Completion codes used here.
pub mod cc {
    /// Success.
    pub const OK: u8 = 0x00;
    /// Parameter not supported (boot options).
    pub const PARAM_NOT_SUPPORTED: u8 = 0x80;
    /// Requested privilege level exceeds the session's limit.
    pub const PRIV_EXCEEDS_LIMIT: u8 = 0x81;
    /// Invalid command.
    pub const INVALID_COMMAND: u8 = 0xC1;
    /// Request data length invalid.
    pub const BAD_LENGTH: u8 = 0xC7;
    /// Invalid data field in request.
    pub const INVALID_DATA: u8 = 0xCC;
    /// Insufficient privilege level.
    pub const INSUFFICIENT_PRIVILEGE: u8 = 0xD4;
    /// Command not supported in present state.
    pub const WRONG_STATE: u8 = 0xD5;
}

const NETFN_CHASSIS: u8 = 0x00;
const NETFN_APP: u8 = 0x06;

/// Cipher suite records (Get Channel Cipher Suites): suites 3 and 2.
const CIPHER_RECORDS: [u8; 10] = [0xC0, 0x03, 0x01, 0x41, 0x81, 0xC0, 0x02, 0x01, 0x41, 0x80];

/// What a command asks of the session layer besides its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEffect {
    /// Nothing.
    None,
    /// Change the session's privilege level.
    SetPrivilege(u8),
    /// Close the session with this id after answering.
    Close(u32),
}

/// Session context of a request (`None` outside a session).
#[derive(Debug, Clone, Copy)]
pub struct SessionCtx {
    /// The BMC session id.
    pub bmc_sid: u32,
    /// Current privilege level.
    pub privilege: u8,
    /// Highest privilege the session may reach.
    pub max_privilege: u8,
}

/// BMC-local boot parameters that the model does not hold.
#[derive(Debug, Default, Clone)]
pub struct BootParams {
    /// Boot option parameter 0 (set in progress).
    pub set_in_progress: u8,
    /// Boot option parameters 1-3 (service partition selector and scan, boot flag
    /// valid bit clearing), one byte each.
    pub simple: [u8; 3],
    /// Boot option parameter 4 (boot info acknowledge).
    pub info_ack: [u8; 2],
}

/// Whether a command may run before a session exists.
pub fn allowed_pre_session(req: &Request) -> bool {
    req.netfn == NETFN_APP && matches!(req.cmd, 0x38 | 0x54)
}

fn required_privilege(netfn: u8, cmd: u8) -> u8 {
    match (netfn, cmd) {
        (NETFN_CHASSIS, 0x02 | 0x08 | 0x09) => privilege::OPERATOR,
        (NETFN_APP, 0x38 | 0x54 | 0x3B | 0x3C) => privilege::CALLBACK,
        _ => privilege::USER,
    }
}

/// Answers one request: completion code, response data, and a session effect.
pub fn handle(
    server: &SimServer,
    guid: &[u8; 16],
    params: &mut BootParams,
    req: &Request,
    session: Option<SessionCtx>,
) -> (u8, Vec<u8>, SessionEffect) {
    if let Some(s) = session
        && s.privilege < required_privilege(req.netfn, req.cmd)
    {
        return (cc::INSUFFICIENT_PRIVILEGE, vec![], SessionEffect::None);
    }
    let d = &req.data;
    let ok = |data: Vec<u8>| (cc::OK, data, SessionEffect::None);
    let fail = |code: u8| (code, vec![], SessionEffect::None);
    match (req.netfn, req.cmd) {
        // Get Device ID
        (NETFN_APP, 0x01) => ok(vec![
            0x20, 0x01, 0x01, 0x00, 0x02, 0x80, // id, rev, fw 1.00, IPMI 2.0, chassis device
            0x00, 0x00, 0x00, // manufacturer (unspecified)
            0x41, 0x4C, // product id "AL" (lab)
            0x00, 0x00, 0x00, 0x00,
        ]),
        // Get System GUID
        (NETFN_APP, 0x37) => ok(guid.to_vec()),
        // Get Channel Authentication Capabilities
        (NETFN_APP, 0x38) => {
            if d.len() < 2 {
                return fail(cc::BAD_LENGTH);
            }
            let extended = d[0] & 0x80 != 0;
            ok(vec![
                0x01,
                if extended { 0x80 } else { 0x00 },
                0x04, // non-null user names, per-message and user-level authentication on
                if extended { 0x02 } else { 0x00 }, // IPMI v2.0 (RMCP+) supported
                0x00,
                0x00,
                0x00,
                0x00,
            ])
        }
        // Get Channel Cipher Suites
        (NETFN_APP, 0x54) => {
            if d.len() < 3 {
                return fail(cc::BAD_LENGTH);
            }
            let index = (d[2] & 0x3F) as usize;
            let start = (index * 16).min(CIPHER_RECORDS.len());
            let end = (start + 16).min(CIPHER_RECORDS.len());
            let mut out = vec![0x01];
            out.extend_from_slice(&CIPHER_RECORDS[start..end]);
            ok(out)
        }
        // Set Session Privilege Level
        (NETFN_APP, 0x3B) => {
            let Some(s) = session else {
                return fail(cc::WRONG_STATE);
            };
            if d.is_empty() {
                return fail(cc::BAD_LENGTH);
            }
            let wanted = d[0] & 0x0F;
            if wanted == 0 {
                return ok(vec![s.privilege]);
            }
            if !(privilege::USER..=privilege::ADMIN).contains(&wanted) {
                return fail(cc::INVALID_DATA);
            }
            if wanted > s.max_privilege {
                return fail(cc::PRIV_EXCEEDS_LIMIT);
            }
            (cc::OK, vec![wanted], SessionEffect::SetPrivilege(wanted))
        }
        // Close Session
        (NETFN_APP, 0x3C) => {
            let Some(s) = session else {
                return fail(cc::WRONG_STATE);
            };
            if d.len() < 4 {
                return fail(cc::BAD_LENGTH);
            }
            let sid = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
            if sid != s.bmc_sid && s.privilege < privilege::ADMIN {
                return fail(cc::INSUFFICIENT_PRIVILEGE);
            }
            (cc::OK, vec![], SessionEffect::Close(sid))
        }
        // Get Chassis Status
        (NETFN_CHASSIS, 0x01) => {
            let on = server.power() == Power::On;
            ok(vec![u8::from(on), 0x00, 0x00, 0x00])
        }
        // Chassis Control
        (NETFN_CHASSIS, 0x02) => {
            if d.is_empty() {
                return fail(cc::BAD_LENGTH);
            }
            let off = server.power() == Power::Off;
            let action = match d[0] & 0x0F {
                0 => ResetAction::ForceOff,
                1 => ResetAction::On,
                2 if off => return fail(cc::WRONG_STATE),
                2 => ResetAction::PowerCycle,
                3 if off => return fail(cc::WRONG_STATE),
                3 => ResetAction::ForceRestart,
                4 => ResetAction::Nmi,
                5 => ResetAction::GracefulShutdown,
                _ => return fail(cc::INVALID_DATA),
            };
            match server.reset(action) {
                Ok(()) => ok(vec![]),
                Err(_) => fail(cc::WRONG_STATE),
            }
        }
        // Set System Boot Options
        (NETFN_CHASSIS, 0x08) => set_boot_option(server, params, d),
        // Get System Boot Options
        (NETFN_CHASSIS, 0x09) => get_boot_option(server, params, d),
        _ => fail(cc::INVALID_COMMAND),
    }
}

fn device_code(t: BootTarget) -> u8 {
    match t {
        BootTarget::None => 0x0,
        BootTarget::Pxe | BootTarget::UefiHttp => 0x1,
        BootTarget::Hdd => 0x2,
        BootTarget::Cd => 0x5,
        BootTarget::BiosSetup => 0x6,
    }
}

fn target_of(code: u8) -> Option<BootTarget> {
    match code {
        0x0 => Some(BootTarget::None),
        0x1 => Some(BootTarget::Pxe),
        0x2 | 0x3 => Some(BootTarget::Hdd),
        0x5 | 0x8 => Some(BootTarget::Cd),
        0x6 => Some(BootTarget::BiosSetup),
        _ => None,
    }
}

fn set_boot_option(
    server: &SimServer,
    params: &mut BootParams,
    d: &[u8],
) -> (u8, Vec<u8>, SessionEffect) {
    let fail = |code: u8| (code, vec![], SessionEffect::None);
    let Some((&selector, data)) = d.split_first() else {
        return fail(cc::BAD_LENGTH);
    };
    match selector & 0x7F {
        0 => {
            let Some(&v) = data.first() else {
                return fail(cc::BAD_LENGTH);
            };
            params.set_in_progress = v & 0x03;
        }
        p @ 1..=3 => {
            let Some(&v) = data.first() else {
                return fail(cc::BAD_LENGTH);
            };
            params.simple[p as usize - 1] = v;
        }
        4 => {
            if data.len() < 2 {
                return fail(cc::BAD_LENGTH);
            }
            params.info_ack = [data[0], data[1]];
        }
        5 => {
            if data.len() < 5 {
                return fail(cc::BAD_LENGTH);
            }
            let Some(target) = target_of((data[1] >> 2) & 0x0F) else {
                return fail(cc::INVALID_DATA);
            };
            let valid = data[0] & 0x80 != 0;
            let enabled = match (valid, data[0] & 0x40 != 0) {
                (false, _) => BootEnabled::Disabled,
                (true, false) => BootEnabled::Once,
                (true, true) => BootEnabled::Continuous,
            };
            let mode = if data[0] & 0x20 != 0 {
                BootMode::Uefi
            } else {
                BootMode::Legacy
            };
            server.set_boot_override(Some(target), Some(enabled), Some(mode));
        }
        _ => return fail(cc::PARAM_NOT_SUPPORTED),
    }
    (cc::OK, vec![], SessionEffect::None)
}

fn get_boot_option(
    server: &SimServer,
    params: &BootParams,
    d: &[u8],
) -> (u8, Vec<u8>, SessionEffect) {
    let Some(&selector) = d.first() else {
        return (cc::BAD_LENGTH, vec![], SessionEffect::None);
    };
    let selector = selector & 0x7F;
    let mut out = vec![0x01, selector];
    match selector {
        0 => out.push(params.set_in_progress),
        p @ 1..=3 => out.push(params.simple[p as usize - 1]),
        4 => out.extend_from_slice(&params.info_ack),
        5 => {
            let b = server.boot_override();
            let mut flags = 0u8;
            if b.enabled != BootEnabled::Disabled {
                flags |= 0x80;
            }
            if b.enabled == BootEnabled::Continuous {
                flags |= 0x40;
            }
            if b.mode == BootMode::Uefi {
                flags |= 0x20;
            }
            out.extend_from_slice(&[flags, device_code(b.target) << 2, 0, 0, 0]);
        }
        _ => return (cc::PARAM_NOT_SUPPORTED, vec![], SessionEffect::None),
    }
    (cc::OK, out, SessionEffect::None)
}

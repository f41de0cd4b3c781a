//! Ironic's provision state machine, as a pure table, and the power states.
//!
//! Every state and every transition of `ironic/common/state_machine.py` is here:
//! 30 states, 93 transitions. [`next`] is the whole machine: a pure function from
//! `(state, event)` to the next state. The conductor does all I/O around it.
//!
//! `target_provision_state` follows Ironic: after a transition it becomes the new
//! state's [`ProvisionState::target`] (an explicit override is allowed, e.g. manual
//! cleaning keeps `manageable`); on reaching a stable state it is cleared.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $s:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $( $(#[$vmeta])* $variant ),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant ),+ ];

            /// The string Ironic uses.
            pub const fn as_str(&self) -> &'static str {
                match self { $( $name::$variant => $s ),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $s => Ok($name::$variant), )+
                    other => Err(UnknownValue { kind: stringify!($name), value: other.to_owned() }),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A string that is not one of an enumeration's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {kind}")]
pub struct UnknownValue {
    /// Which enumeration.
    pub kind: &'static str,
    /// The value received.
    pub value: String,
}

string_enum! {
    /// A provision state (`provision_state` / `target_provision_state`).
    #[non_exhaustive]
    pub enum ProvisionState {
        /// New node; not yet verified.
        Enroll => "enroll",
        /// Running verify steps (enroll → manageable).
        Verifying => "verifying",
        /// Verified and under the operator's control.
        Manageable => "manageable",
        /// Inspection running.
        Inspecting => "inspecting",
        /// Waiting for in-band inspection data.
        InspectWait => "inspect wait",
        /// Inspection failed.
        InspectFailed => "inspect failed",
        /// Adopting an already deployed node.
        Adopting => "adopting",
        /// Adoption failed.
        AdoptFailed => "adopt failed",
        /// Clean and ready to deploy.
        Available => "available",
        /// Deploy steps running.
        Deploying => "deploying",
        /// Waiting for the agent to call back during deployment.
        DeployWait => "wait call-back",
        /// Deployment paused by a `hold` step.
        DeployHold => "deploy hold",
        /// Deployment failed.
        DeployFailed => "deploy failed",
        /// Deployed.
        Active => "active",
        /// Tearing down an instance.
        Deleting => "deleting",
        /// Tear-down failed.
        Error => "error",
        /// Clean steps running.
        Cleaning => "cleaning",
        /// Waiting for the agent during cleaning.
        CleanWait => "clean wait",
        /// Cleaning paused by a `hold` step.
        CleanHold => "clean hold",
        /// Cleaning failed.
        CleanFailed => "clean failed",
        /// Booting the rescue ramdisk.
        Rescuing => "rescuing",
        /// Waiting for the rescue ramdisk to call back.
        RescueWait => "rescue wait",
        /// In rescue mode.
        Rescue => "rescue",
        /// Rescue failed.
        RescueFailed => "rescue failed",
        /// Leaving rescue mode.
        Unrescuing => "unrescuing",
        /// Leaving rescue mode failed.
        UnrescueFailed => "unrescue failed",
        /// Service steps running on a deployed node.
        Servicing => "servicing",
        /// Waiting for the agent during servicing.
        ServiceWait => "service wait",
        /// Servicing paused by a `hold` step.
        ServiceHold => "service hold",
        /// Servicing failed.
        ServiceFailed => "service failed",
    }
}

string_enum! {
    /// An event fed to the state machine: API verbs and the conductor's internal events.
    #[non_exhaustive]
    pub enum Event {
        /// `manage` (API).
        Manage => "manage",
        /// `provide` (API): automated cleaning, then available.
        Provide => "provide",
        /// `clean` (API): manual cleaning; also the internal tear-down → cleaning event.
        Clean => "clean",
        /// `inspect` (API).
        Inspect => "inspect",
        /// `adopt` (API).
        Adopt => "adopt",
        /// `deploy` (API targets `active` / `deploy`).
        Deploy => "deploy",
        /// `rebuild` (API).
        Rebuild => "rebuild",
        /// `delete` (API targets `deleted` / `undeploy`).
        Delete => "delete",
        /// `rescue` (API).
        Rescue => "rescue",
        /// `unrescue` (API).
        Unrescue => "unrescue",
        /// `service` (API).
        Service => "service",
        /// `abort` (API).
        Abort => "abort",
        /// `unhold` (API).
        Unhold => "unhold",
        /// Internal: the operation finished.
        Done => "done",
        /// Internal: the operation failed.
        Fail => "fail",
        /// Internal: waiting for a callback.
        Wait => "wait",
        /// Internal: a callback arrived; continue.
        Resume => "resume",
        /// Internal: a step asked to hold.
        Hold => "hold",
    }
}

use Event as E;
use ProvisionState as S;

/// Every transition of Ironic's state machine: `(from, event, to)`. 93 entries.
pub const TRANSITIONS: &[(ProvisionState, Event, ProvisionState)] = &[
    (S::Enroll, E::Manage, S::Verifying),
    (S::Verifying, E::Done, S::Manageable),
    (S::Verifying, E::Fail, S::Enroll),
    (S::Manageable, E::Provide, S::Cleaning),
    (S::Manageable, E::Clean, S::Cleaning),
    (S::Manageable, E::Inspect, S::Inspecting),
    (S::Manageable, E::Adopt, S::Adopting),
    (S::Inspecting, E::Done, S::Manageable),
    (S::Inspecting, E::Fail, S::InspectFailed),
    (S::Inspecting, E::Wait, S::InspectWait),
    (S::InspectWait, E::Done, S::Manageable),
    (S::InspectWait, E::Fail, S::InspectFailed),
    (S::InspectWait, E::Abort, S::InspectFailed),
    (S::InspectWait, E::Resume, S::Inspecting),
    (S::InspectFailed, E::Manage, S::Manageable),
    (S::InspectFailed, E::Inspect, S::Inspecting),
    (S::Adopting, E::Done, S::Active),
    (S::Adopting, E::Fail, S::AdoptFailed),
    (S::AdoptFailed, E::Adopt, S::Adopting),
    (S::AdoptFailed, E::Manage, S::Manageable),
    (S::Available, E::Deploy, S::Deploying),
    (S::Available, E::Manage, S::Manageable),
    (S::Deploying, E::Fail, S::DeployFailed),
    (S::Deploying, E::Wait, S::DeployWait),
    (S::Deploying, E::Hold, S::DeployHold),
    (S::Deploying, E::Done, S::Active),
    (S::DeployWait, E::Hold, S::DeployHold),
    (S::DeployWait, E::Resume, S::Deploying),
    (S::DeployWait, E::Fail, S::DeployFailed),
    (S::DeployWait, E::Abort, S::DeployFailed),
    (S::DeployWait, E::Delete, S::Deleting),
    (S::DeployHold, E::Unhold, S::DeployWait),
    (S::DeployHold, E::Abort, S::DeployFailed),
    (S::DeployFailed, E::Rebuild, S::Deploying),
    (S::DeployFailed, E::Deploy, S::Deploying),
    (S::DeployFailed, E::Delete, S::Deleting),
    (S::Active, E::Rebuild, S::Deploying),
    (S::Active, E::Delete, S::Deleting),
    (S::Active, E::Rescue, S::Rescuing),
    (S::Active, E::Service, S::Servicing),
    (S::Deleting, E::Fail, S::Error),
    (S::Deleting, E::Clean, S::Cleaning),
    (S::Error, E::Rebuild, S::Deploying),
    (S::Error, E::Delete, S::Deleting),
    (S::Cleaning, E::Done, S::Available),
    (S::Cleaning, E::Fail, S::CleanFailed),
    (S::Cleaning, E::Wait, S::CleanWait),
    (S::Cleaning, E::Hold, S::CleanHold),
    (S::Cleaning, E::Manage, S::Manageable),
    (S::CleanWait, E::Fail, S::CleanFailed),
    (S::CleanWait, E::Abort, S::CleanFailed),
    (S::CleanWait, E::Hold, S::CleanHold),
    (S::CleanWait, E::Resume, S::Cleaning),
    (S::CleanHold, E::Abort, S::CleanFailed),
    (S::CleanHold, E::Unhold, S::CleanWait),
    (S::CleanFailed, E::Manage, S::Manageable),
    (S::Rescuing, E::Done, S::Rescue),
    (S::Rescuing, E::Wait, S::RescueWait),
    (S::Rescuing, E::Fail, S::RescueFailed),
    (S::RescueWait, E::Resume, S::Rescuing),
    (S::RescueWait, E::Fail, S::RescueFailed),
    (S::RescueWait, E::Abort, S::RescueFailed),
    (S::RescueWait, E::Delete, S::Deleting),
    (S::Rescue, E::Rescue, S::Rescuing),
    (S::Rescue, E::Delete, S::Deleting),
    (S::Rescue, E::Unrescue, S::Unrescuing),
    (S::RescueFailed, E::Rescue, S::Rescuing),
    (S::RescueFailed, E::Unrescue, S::Unrescuing),
    (S::RescueFailed, E::Delete, S::Deleting),
    (S::Unrescuing, E::Done, S::Active),
    (S::Unrescuing, E::Fail, S::UnrescueFailed),
    (S::UnrescueFailed, E::Rescue, S::Rescuing),
    (S::UnrescueFailed, E::Unrescue, S::Unrescuing),
    (S::UnrescueFailed, E::Delete, S::Deleting),
    (S::Servicing, E::Done, S::Active),
    (S::Servicing, E::Fail, S::ServiceFailed),
    (S::Servicing, E::Wait, S::ServiceWait),
    (S::Servicing, E::Hold, S::ServiceHold),
    (S::ServiceWait, E::Hold, S::ServiceHold),
    (S::ServiceWait, E::Resume, S::Servicing),
    (S::ServiceWait, E::Fail, S::ServiceFailed),
    (S::ServiceWait, E::Abort, S::ServiceFailed),
    (S::ServiceWait, E::Delete, S::Deleting),
    (S::ServiceHold, E::Service, S::Servicing),
    (S::ServiceHold, E::Unhold, S::ServiceWait),
    (S::ServiceHold, E::Fail, S::ServiceFailed),
    (S::ServiceHold, E::Abort, S::ServiceFailed),
    (S::ServiceFailed, E::Service, S::Servicing),
    (S::ServiceFailed, E::Rescue, S::Rescuing),
    (S::ServiceFailed, E::Wait, S::ServiceWait),
    (S::ServiceFailed, E::Hold, S::ServiceHold),
    (S::ServiceFailed, E::Delete, S::Deleting),
    (S::ServiceFailed, E::Abort, S::Active),
];

/// The state machine: the state `event` leads to from `state`, or `None` when the
/// event is not allowed there (Ironic's `InvalidState`).
pub const fn next(state: ProvisionState, event: Event) -> Option<ProvisionState> {
    let mut i = 0;
    while i < TRANSITIONS.len() {
        let (from, ev, to) = TRANSITIONS[i];
        if from as u8 == state as u8 && ev as u8 == event as u8 {
            return Some(to);
        }
        i += 1;
    }
    None
}

/// The events allowed from a state.
pub fn allowed_events(state: ProvisionState) -> impl Iterator<Item = Event> {
    TRANSITIONS
        .iter()
        .filter(move |(from, _, _)| *from == state)
        .map(|(_, e, _)| *e)
}

/// How a state behaves, after `states.py`'s groupings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StateClass {
    /// Will not change unless a request arrives (`STABLE_STATES`).
    Stable,
    /// Changes without an external request (`UNSTABLE_STATES`).
    Transient,
    /// A failure state (`FAILURE_STATES`).
    Failure,
    /// Paused by a `hold` step until `unhold` or `abort`.
    Hold,
}

impl ProvisionState {
    /// The state's class.
    pub const fn class(self) -> StateClass {
        match self {
            S::Enroll | S::Manageable | S::Available | S::Active | S::Error | S::Rescue => {
                StateClass::Stable
            }
            S::DeployFailed
            | S::CleanFailed
            | S::InspectFailed
            | S::RescueFailed
            | S::UnrescueFailed
            | S::AdoptFailed
            | S::ServiceFailed => StateClass::Failure,
            S::DeployHold | S::CleanHold | S::ServiceHold => StateClass::Hold,
            _ => StateClass::Transient,
        }
    }

    /// `STABLE_STATES`.
    pub const fn is_stable(self) -> bool {
        matches!(self.class(), StateClass::Stable)
    }

    /// `FAILURE_STATES`.
    pub const fn is_failure(self) -> bool {
        matches!(self.class(), StateClass::Failure)
    }

    /// `UNSTABLE_STATES`: changes without an external request.
    pub const fn is_transient(self) -> bool {
        matches!(self.class(), StateClass::Transient)
    }

    /// A hold state (`deploy hold`, `clean hold`, `service hold`).
    pub const fn is_hold(self) -> bool {
        matches!(self.class(), StateClass::Hold)
    }

    /// A wait-for-callback state: the agent must heartbeat.
    pub const fn is_wait_for_callback(self) -> bool {
        matches!(
            self,
            S::DeployWait | S::CleanWait | S::InspectWait | S::RescueWait | S::ServiceWait
        )
    }

    /// The FSM's `target` of a state: the stable state it is heading to.
    pub const fn target(self) -> Option<ProvisionState> {
        Some(match self {
            S::Verifying | S::Inspecting | S::InspectWait | S::InspectFailed => S::Manageable,
            S::Adopting | S::AdoptFailed => S::Active,
            S::Deploying | S::DeployWait | S::DeployHold | S::DeployFailed => S::Active,
            S::Deleting => S::Available,
            S::Cleaning | S::CleanWait | S::CleanHold | S::CleanFailed => S::Available,
            S::Rescuing | S::RescueWait | S::RescueFailed => S::Rescue,
            S::Unrescuing | S::UnrescueFailed => S::Active,
            S::Servicing | S::ServiceWait | S::ServiceHold | S::ServiceFailed => S::Active,
            S::Enroll | S::Manageable | S::Available | S::Active | S::Error | S::Rescue => {
                return None;
            }
        })
    }

    /// `STUCK_STATES_TREATED_AS_FAIL`: after a crash these get the `fail` event.
    pub const fn is_stuck_on_restart(self) -> bool {
        matches!(
            self,
            S::Deploying
                | S::Cleaning
                | S::Verifying
                | S::Inspecting
                | S::Adopting
                | S::Rescuing
                | S::Unrescuing
                | S::Deleting
                | S::Servicing
        )
    }

    /// `UPDATE_ALLOWED_STATES`: PATCH allowed while a target is set.
    /// (`inspecting` is refused from API 1.39 on; callers check that.)
    pub const fn update_allowed(self) -> bool {
        matches!(
            self,
            S::DeployFailed
                | S::Inspecting
                | S::InspectFailed
                | S::InspectWait
                | S::CleanFailed
                | S::Error
                | S::Verifying
                | S::AdoptFailed
                | S::RescueFailed
                | S::UnrescueFailed
                | S::ServiceHold
                | S::ServiceFailed
        )
    }

    /// `DELETE_ALLOWED_STATES` (plus `available`, allowed by default in Ironic).
    pub const fn delete_allowed(self) -> bool {
        matches!(
            self,
            S::Manageable | S::Enroll | S::AdoptFailed | S::Available
        )
    }

    /// `LOOKUP_ALLOWED_STATES` (agent lookup), without fast-track.
    pub const fn lookup_allowed(self) -> bool {
        matches!(
            self,
            S::Deploying
                | S::DeployWait
                | S::Cleaning
                | S::CleanWait
                | S::Inspecting
                | S::InspectWait
                | S::Rescuing
                | S::RescueWait
                | S::ServiceWait
        )
    }

    /// Whether a heartbeat is accepted in this state (wait states, the running
    /// states and holds; Ironic's `HEARTBEAT_ALLOWED` without fast-track).
    pub const fn heartbeat_allowed(self) -> bool {
        matches!(
            self,
            S::Deploying
                | S::DeployWait
                | S::DeployHold
                | S::Cleaning
                | S::CleanWait
                | S::CleanHold
                | S::InspectWait
                | S::Rescuing
                | S::RescueWait
                | S::Servicing
                | S::ServiceWait
                | S::ServiceHold
        )
    }

    /// Whether the power-sync periodic skips this state (`SYNC_EXCLUDED_STATES`).
    pub const fn power_sync_excluded(self) -> bool {
        matches!(
            self,
            S::DeployWait | S::CleanWait | S::Enroll | S::AdoptFailed
        )
    }
}

/// Apply `event` to `(state, target)`: returns the new `(provision_state,
/// target_provision_state)`, following `TaskManager.process_event`: the target
/// becomes `target_override` if given, else the new state's FSM target; reaching a
/// stable state clears it.
pub fn apply(
    state: ProvisionState,
    event: Event,
    target_override: Option<ProvisionState>,
) -> Option<(ProvisionState, Option<ProvisionState>)> {
    let new = next(state, event)?;
    let target = if new.is_stable() {
        None
    } else {
        target_override.or(new.target())
    };
    Some((new, target))
}

/// The provision API verb for a `target` given in `PUT /states/provision`
/// (`states.VERBS`, with `rebuild` passed through).
pub fn verb_event(target: &str) -> Option<Event> {
    Some(match target {
        "active" | "deploy" => E::Deploy,
        "deleted" | "undeploy" => E::Delete,
        "rebuild" => E::Rebuild,
        "manage" => E::Manage,
        "provide" => E::Provide,
        "inspect" => E::Inspect,
        "abort" => E::Abort,
        "clean" => E::Clean,
        "adopt" => E::Adopt,
        "rescue" => E::Rescue,
        "unrescue" => E::Unrescue,
        "unhold" => E::Unhold,
        "service" => E::Service,
        _ => return None,
    })
}

/// The minimum API microversion of a provision verb target (`MIN_VERB_VERSIONS`).
pub fn verb_min_version(target: &str) -> Option<u32> {
    Some(match target {
        "active" | "deleted" | "rebuild" => 1,
        "manage" | "provide" => 4,
        "inspect" => 6,
        "abort" => 13,
        "clean" => 15,
        "adopt" => 17,
        "rescue" | "unrescue" => 38,
        "deploy" | "undeploy" => 73,
        "unhold" => 85,
        "service" => 87,
        _ => return None,
    })
}

string_enum! {
    /// An observed power state (`power_state`).
    #[non_exhaustive]
    pub enum PowerState {
        /// On.
        On => "power on",
        /// Off.
        Off => "power off",
        /// The BMC reported an error or an unknown state.
        Error => "error",
    }
}

string_enum! {
    /// A requested power action (`PUT /states/power` target; `target_power_state`).
    #[non_exhaustive]
    pub enum PowerAction {
        /// Power on.
        PowerOn => "power on",
        /// Hard power off.
        PowerOff => "power off",
        /// Hard reboot (power on if off).
        Reboot => "rebooting",
        /// ACPI (soft) power off.
        SoftPowerOff => "soft power off",
        /// Soft reboot.
        SoftReboot => "soft rebooting",
    }
}

impl PowerAction {
    /// The power state the node is in once the action completed.
    pub const fn resulting_state(self) -> PowerState {
        match self {
            PowerAction::PowerOn | PowerAction::Reboot | PowerAction::SoftReboot => PowerState::On,
            PowerAction::PowerOff | PowerAction::SoftPowerOff => PowerState::Off,
        }
    }

    /// Whether this is a soft (ACPI) action.
    pub const fn is_soft(self) -> bool {
        matches!(self, PowerAction::SoftPowerOff | PowerAction::SoftReboot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn thirty_states_and_ninety_three_transitions() {
        assert_eq!(ProvisionState::ALL.len(), 30);
        assert_eq!(TRANSITIONS.len(), 93);
        let unique: HashSet<_> = TRANSITIONS.iter().map(|(f, e, _)| (*f, *e)).collect();
        assert_eq!(unique.len(), 93, "a (state, event) pair appears twice");
    }

    #[test]
    fn every_state_round_trips_its_string() {
        for s in ProvisionState::ALL {
            assert_eq!(s.as_str().parse::<ProvisionState>().unwrap(), *s);
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(serde_json::from_str::<ProvisionState>(&json).unwrap(), *s);
        }
        assert!("bogus".parse::<ProvisionState>().is_err());
    }

    #[test]
    fn targets_are_stable_states() {
        for s in ProvisionState::ALL {
            if let Some(t) = s.target() {
                assert!(t.is_stable(), "{s} has non-stable target {t}");
            } else {
                assert!(s.is_stable(), "{s} has no target but is not stable");
            }
        }
    }

    #[test]
    fn groupings_match_states_py() {
        let stable: Vec<_> = ProvisionState::ALL
            .iter()
            .filter(|s| s.is_stable())
            .collect();
        assert_eq!(stable.len(), 6);
        let failure: Vec<_> = ProvisionState::ALL
            .iter()
            .filter(|s| s.is_failure())
            .collect();
        assert_eq!(failure.len(), 7);
        let transient: Vec<_> = ProvisionState::ALL
            .iter()
            .filter(|s| s.is_transient())
            .collect();
        assert_eq!(transient.len(), 14);
        let hold: Vec<_> = ProvisionState::ALL.iter().filter(|s| s.is_hold()).collect();
        assert_eq!(hold.len(), 3);
        let wait: Vec<_> = ProvisionState::ALL
            .iter()
            .filter(|s| s.is_wait_for_callback())
            .collect();
        assert_eq!(wait.len(), 5);
    }

    #[test]
    fn apply_sets_and_clears_target() {
        assert_eq!(
            apply(S::Available, E::Deploy, None),
            Some((S::Deploying, Some(S::Active)))
        );
        assert_eq!(apply(S::Deploying, E::Done, None), Some((S::Active, None)));
        assert_eq!(
            apply(S::Manageable, E::Clean, Some(S::Manageable)),
            Some((S::Cleaning, Some(S::Manageable)))
        );
        assert_eq!(apply(S::Enroll, E::Deploy, None), None);
    }
}

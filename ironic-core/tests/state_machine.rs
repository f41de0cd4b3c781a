//! The provision state machine against Ironic's own table.
//!
//! `tests/data/ironic-states.md` is section 3 of the reference extracted from
//! Ironic's `state_machine.py`, copied verbatim. The test parses its table and
//! walks every (state, event) pair: 30 states × 18 events.

use std::collections::HashMap;

use ironic_core::states::{self, Event, ProvisionState};
use proptest::prelude::*;

const TABLE: &str = include_str!("data/ironic-states.md");

/// `| \`from\` | \`event\` | \`to\` | trigger |` rows.
fn parse_table() -> HashMap<(ProvisionState, Event), ProvisionState> {
    let mut out = HashMap::new();
    for line in TABLE.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // ["", from, event, to, trigger, ""]
        if cells.len() < 5 || !cells[1].starts_with('`') {
            continue;
        }
        let unquote = |s: &str| s.trim_matches('`').to_owned();
        let from: ProvisionState = unquote(cells[1])
            .parse()
            .unwrap_or_else(|e| panic!("bad state in {line:?}: {e}"));
        let event: Event = unquote(cells[2])
            .parse()
            .unwrap_or_else(|e| panic!("bad event in {line:?}: {e}"));
        let to: ProvisionState = unquote(cells[3])
            .parse()
            .unwrap_or_else(|e| panic!("bad state in {line:?}: {e}"));
        assert!(
            out.insert((from, event), to).is_none(),
            "duplicate row {line:?}"
        );
    }
    out
}

#[test]
fn the_reference_table_has_93_transitions() {
    assert_eq!(parse_table().len(), 93);
}

#[test]
fn every_state_event_pair_matches_the_reference() {
    let table = parse_table();
    assert_eq!(ProvisionState::ALL.len(), 30);
    assert_eq!(Event::ALL.len(), 18);
    let mut checked = 0;
    for &s in ProvisionState::ALL {
        for &e in Event::ALL {
            assert_eq!(
                states::next(s, e),
                table.get(&(s, e)).copied(),
                "next({s}, {e}) differs from Ironic's table"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 540);
    // and the crate's own list is exactly the table
    assert_eq!(states::TRANSITIONS.len(), table.len());
    for (f, e, t) in states::TRANSITIONS {
        assert_eq!(table.get(&(*f, *e)), Some(t));
    }
}

#[test]
fn allowed_events_match_the_table() {
    let table = parse_table();
    for &s in ProvisionState::ALL {
        let mut ours: Vec<Event> = states::allowed_events(s).collect();
        let mut theirs: Vec<Event> = table
            .keys()
            .filter(|(f, _)| *f == s)
            .map(|(_, e)| *e)
            .collect();
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs, "allowed events of {s}");
    }
}

#[test]
fn every_state_is_reachable_from_enroll() {
    let mut seen = vec![ProvisionState::Enroll];
    let mut i = 0;
    while i < seen.len() {
        for &e in Event::ALL {
            if let Some(t) = states::next(seen[i], e)
                && !seen.contains(&t)
            {
                seen.push(t);
            }
        }
        i += 1;
    }
    assert_eq!(seen.len(), 30);
}

fn state() -> impl Strategy<Value = ProvisionState> {
    prop::sample::select(ProvisionState::ALL.to_vec())
}
fn event() -> impl Strategy<Value = Event> {
    prop::sample::select(Event::ALL.to_vec())
}

proptest! {
    /// Random event sequences only ever visit defined states, and every step the
    /// machine takes is a row of Ironic's table.
    #[test]
    fn random_walks_stay_in_the_table(start in state(), events in prop::collection::vec(event(), 0..200)) {
        let table = parse_table();
        let mut s = start;
        let mut target = s.target();
        for e in events {
            match states::apply(s, e, None) {
                Some((to, t)) => {
                    prop_assert_eq!(table.get(&(s, e)).copied(), Some(to));
                    prop_assert!(ProvisionState::ALL.contains(&to));
                    if to.is_stable() {
                        prop_assert_eq!(t, None, "apply clears the target on stable states");
                    } else {
                        prop_assert_eq!(t, to.target());
                    }
                    s = to;
                    target = t;
                }
                None => {
                    prop_assert!(!table.contains_key(&(s, e)));
                }
            }
            if let Some(t) = target {
                prop_assert!(t.is_stable(), "target {} of {} is not stable", t, s);
            }
        }
    }

    /// Targets are stable states; an explicit override is kept on non-stable
    /// states and dropped on stable ones.
    #[test]
    fn targets_are_stable_and_overrides_apply(s in state(), e in event(), over in state()) {
        if let Some(t) = s.target() {
            prop_assert!(t.is_stable());
        }
        if let Some((to, t)) = states::apply(s, e, Some(over)) {
            if to.is_stable() {
                prop_assert_eq!(t, None);
            } else {
                prop_assert_eq!(t, Some(over));
            }
        }
    }

    /// Every state has exactly one class, and the groupings are consistent.
    #[test]
    fn classes_are_consistent(s in state()) {
        let n = [s.is_stable(), s.is_transient(), s.is_failure(), s.is_hold()]
            .iter().filter(|b| **b).count();
        prop_assert_eq!(n, 1);
        if s.is_wait_for_callback() { prop_assert!(s.is_transient()); }
        if s.is_stuck_on_restart() { prop_assert!(s.is_transient() && !s.is_wait_for_callback()); }
        if s.lookup_allowed() { prop_assert!(!s.is_stable()); }
    }
}

//! Unit tests over vendor fixtures and property tests of the parser.

mod fuzz;
mod vendors;

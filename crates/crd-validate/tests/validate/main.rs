//! One test binary for the validator, a module per concern.

mod cel_rules;
mod common;
mod constraints;
mod metadata;
mod pruning_defaults;
mod schema_checks;

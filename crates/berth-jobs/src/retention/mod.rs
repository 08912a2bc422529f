//! Tag retention (Harbor's, issue #18): a project's policy ([`policy`])
//! decides which artifacts stay ([`plan`]); a run ([`run`]) records the
//! plan and, unless dry, deletes the rest through the metadata store.
//! Blob bytes are left to garbage collection.

pub mod plan;
pub mod policy;
pub mod run;
pub mod selector;

pub use plan::{plan, Decision, Role};
pub use policy::{Policy, PolicyError, Rule, Template};
pub use run::{run, run_due, Invalidate, Removed, RetentionError, RetentionOptions, RetentionReport};

#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod run_tests;

//! The `supportgate run` process: the state its tasks share, metrics, the clock, and the
//! supervision of its long-lived tasks.

pub mod clock;
pub mod health;
pub mod metrics;
pub mod run;
pub mod state;

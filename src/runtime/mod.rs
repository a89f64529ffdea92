//! The `supportgate run` process: the state its tasks share, the one SupportPolicy watch,
//! metrics, the clock, logging, and the supervision of its long-lived tasks.

pub mod clock;
pub mod exceptions;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod policies;
pub mod resolve;
pub mod run;
pub mod state;
pub mod supervisor;

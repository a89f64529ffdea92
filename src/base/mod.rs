//! What the webhook and the controller both stand on: the policies in force and the watch that
//! compiles them, the SupportException watch, the metrics registry, the clock, and the plain
//! HTTP reply both servers write. Imports only `engine` and `api`.

pub mod clock;
pub mod exceptions;
pub mod metrics;
pub mod policies;
pub mod reply;
pub mod resolve;
pub mod state;

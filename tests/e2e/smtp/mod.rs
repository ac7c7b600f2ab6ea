//! The SMTP listener end to end: the conversation and its limits, hostile
//! clients, TLS and AUTH, SMTPUTF8 from intake to the upstream.

mod content;
mod hostile;
mod session;
mod smtputf8;
pub(crate) mod tls;

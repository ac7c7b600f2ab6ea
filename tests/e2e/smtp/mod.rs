//! The SMTP listener end to end: the conversation and its limits, hostile
//! clients, TLS and AUTH, SMTPUTF8 from intake to the upstream.

mod hostile;
mod session;
mod smtputf8;
mod tls;

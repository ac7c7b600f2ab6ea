//! The real binary as a child process: `kill -9`, SIGTERM and the command
//! line, configuration reload on SIGHUP, and no secret in its output.
//! (`import`, `expiring` and `migrate` also run it, each for its command.)

mod lifecycle;
mod refusals;
mod reload;
mod secrets;

//! The real binary as a child process: `kill -9`, SIGTERM and the command
//! line, configuration reload on SIGHUP, no secret in its output, and no
//! recipient address in it unless asked.
//! (`import`, `expiring` and `migrate` also run it, each for its command.)

mod lifecycle;
mod log_privacy;
mod refusals;
mod reload;
mod secrets;

//! The console (`/admin`) over real HTTP against the relay in-process:
//! sign-in, sessions and their cookie, CSRF, roles, and each view.

mod audit;
mod browser;
mod campaigns;
mod message;
mod overview;
mod person;
mod queue;
mod register;
mod sign_in;
mod suppressions;

//! The console (`/admin`) over real HTTP against the relay in-process:
//! sign-in, sessions and their cookie, CSRF, roles, and each view.

mod browser;
mod message;
mod overview;
mod sign_in;

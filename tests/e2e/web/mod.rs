//! The recipient's pages over real HTTP: links and one-click, the
//! preference page, hostile HTTP clients, and the pages in a real browser.

mod browser;
mod connections;
mod hostile;
mod origin;
mod pages;

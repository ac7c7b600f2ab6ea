//! The recipient's pages over real HTTP: links and one-click, the
//! preference page, who is asking and the undo, labels per language,
//! hostile HTTP clients, and the pages in a real browser.

mod asking;
mod browser;
mod connections;
mod hostile;
mod labels;
mod origin;
mod pages;

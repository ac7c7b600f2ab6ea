//! Pure mail-level helpers that several layers share: reading a message's
//! raw header block. No IO; knows nothing of SMTP sessions, the store or
//! delivery.

pub mod header;

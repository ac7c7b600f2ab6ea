//! Pure mail-level helpers that several layers share: the one address
//! parser (SMTP, API, CLI, imports), reading a message's raw header block,
//! the queue id and Message-ID a message is looked up by, DMARC alignment
//! of the From domain with a signing domain, and masking a recipient's
//! address in a reply. No IO; knows nothing of SMTP sessions, the store or
//! delivery.

pub mod address;
pub mod align;
pub mod header;
pub mod ids;
pub mod mask;

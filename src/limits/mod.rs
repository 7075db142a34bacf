//! Limits on what one client, or one address, can make the server do to
//! everyone else: [`flood`] prices each line by the output it causes and
//! slows down a client over its budget; [`peers`] caps connections per
//! address. Pure policy: the server loop applies them and counts each hit.

pub mod flood;
pub mod peers;

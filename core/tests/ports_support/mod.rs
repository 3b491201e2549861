//! Helpers shared by the port registry tests.

use std::net::{Ipv4Addr, TcpListener};
use vibetrees_core::services::ports::is_port_in_use;

/// A port with `n` free ports after it (none listening), found by binding port 0.
pub fn free_base(n: u16) -> u16 {
    loop {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let p = l.local_addr().unwrap().port();
        drop(l);
        if p < 60000 && (p..p + n).all(|q| !is_port_in_use(q)) {
            return p;
        }
    }
}

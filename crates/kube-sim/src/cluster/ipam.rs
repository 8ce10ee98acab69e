//! Address pools: pod IPs from 127.1.0.0/16, Service cluster IPs from 127.2.0.0/16.
//!
//! Both are loopback ranges on purpose: a simulated process binds its pod IP on this
//! machine, and nothing the simulation resolves can send traffic to a private network.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// A /16 pool handing out addresses next-fit (a released address is reused only after
/// the pool wrapped around), skipping `.0` and `.255`.
#[derive(Clone, Debug)]
pub struct Pool {
    base: u32,
    next: u32,
    in_use: BTreeSet<u32>,
}

impl Pool {
    /// 127.1.0.0/16.
    pub fn pods() -> Self {
        Pool::new(Ipv4Addr::new(127, 1, 0, 0))
    }

    /// 127.2.0.0/16.
    pub fn services() -> Self {
        Pool::new(Ipv4Addr::new(127, 2, 0, 0))
    }

    fn new(base: Ipv4Addr) -> Self {
        Pool { base: u32::from(base), next: 1, in_use: BTreeSet::new() }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & 0xffff_0000 == self.base
    }

    fn usable(offset: u32) -> bool {
        let last = offset & 0xff;
        offset > 0 && offset < 0x1_0000 && last != 0 && last != 255
    }

    /// Marks an address (found on an existing object) as taken.
    pub fn reserve(&mut self, ip: Ipv4Addr) {
        if self.contains(ip) {
            self.in_use.insert(u32::from(ip) - self.base);
        }
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        if self.contains(ip) {
            self.in_use.remove(&(u32::from(ip) - self.base));
        }
    }

    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        for _ in 0..0x1_0000 {
            let offset = self.next;
            self.next = if self.next >= 0xfffe { 1 } else { self.next + 1 };
            if Self::usable(offset) && self.in_use.insert(offset) {
                return Some(Ipv4Addr::from(self.base + offset));
            }
        }
        None
    }

    pub fn in_use(&self) -> usize {
        self.in_use.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_addresses_are_loopback_in_127_1() {
        let mut pool = Pool::pods();
        let ip = pool.allocate().unwrap();
        assert_eq!(ip, Ipv4Addr::new(127, 1, 0, 1));
        assert!(ip.is_loopback());
    }

    #[test]
    fn released_addresses_are_reused_only_after_wrapping() {
        let mut pool = Pool::services();
        let a = pool.allocate().unwrap();
        pool.release(a);
        let b = pool.allocate().unwrap();
        assert_ne!(a, b);
        assert_eq!(b, Ipv4Addr::new(127, 2, 0, 2));
    }

    #[test]
    fn reserved_and_network_addresses_are_skipped() {
        let mut pool = Pool::pods();
        pool.reserve(Ipv4Addr::new(127, 1, 0, 1));
        pool.reserve(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(pool.in_use(), 1);
        let got: Vec<Ipv4Addr> = (0..300).map(|_| pool.allocate().unwrap()).collect();
        assert_eq!(got[0], Ipv4Addr::new(127, 1, 0, 2));
        assert!(got.iter().all(|ip| ip.octets()[3] != 0 && ip.octets()[3] != 255));
        assert!(got.iter().all(|ip| ip.octets()[..2] == [127, 1]));
    }

    #[test]
    fn a_full_pool_says_so() {
        let mut pool = Pool::pods();
        let n = std::iter::from_fn(|| pool.allocate()).count();
        assert_eq!(n, 256 * 254);
        assert_eq!(pool.allocate(), None);
    }
}

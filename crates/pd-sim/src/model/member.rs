//! PD members and the PD leader. A leader exists only while a majority of the members
//! in etcd run; a change of leader leaves a gap of `pd-leader-change-*`.
//!
//! As in PD, the PD leader follows the etcd leader: only the etcd leader campaigns, and
//! a PD leader that sees etcd leadership move away resigns. An election after a lost
//! leader picks any running member (etcd's raft knows nothing of leader priorities).
//! Priorities act through PD's leader-priority loop (`etcdLeaderLoop` calling
//! `CheckPriority`): every running member, on a ticker started with its process and
//! firing every `LeaderPriorityCheckInterval` (one minute, not settable in PD's config;
//! the `leader-priority-check` knob here), compares its own priority with the etcd
//! leader's and, when its own is strictly higher, moves etcd leadership to itself; the
//! PD leadership follows after the usual gap. So a higher-priority member that runs takes
//! leadership at its next tick, a stopped one never does, equal priorities move nothing,
//! and a transfer to a lower-priority member is undone within a minute.
//!
//! Membership changes pass etcd's strict reconfiguration check (PD's embedded etcd
//! runs with `StrictReconfigCheck` on; etcd `server.go` `mayAddMember` /
//! `mayRemoveMember`). A member counts as *started* once it has run (etcd: published
//! its name) and as *connected* while it runs. Removing a voting member needs the
//! started members left to be a quorum of the members left ("not enough started
//! members"); removing one that runs also needs the running members without it to be
//! at least `1 + (n - 1) / 2` of the `n` current members ("unhealthy cluster"), while
//! one that is down may go. Adding a member needs the started members to be a quorum
//! of the grown membership and every member connected ("unhealthy cluster").

use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use serde::Serialize;
use sim_clock::SimInstant;

#[derive(Clone, Debug, Serialize)]
pub struct Member {
    pub name: String,
    pub member_id: u64,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub leader_priority: i64,
    pub binary_version: String,
    pub git_hash: String,
    pub deploy_path: String,
    /// The PD process runs (and its address answers).
    pub running: bool,
    /// The member's data directory exists.
    pub has_data: bool,
    /// The member is part of etcd's membership (not removed).
    pub in_etcd: bool,
    /// The member has run since it was added (etcd: it published its name).
    pub started: bool,
    #[serde(skip)]
    pub started_at: SimInstant,
}

#[derive(Debug, Default)]
pub struct Members {
    pub list: Vec<Member>,
    pub leader: Option<u64>,
    pub etcd_leader: Option<u64>,
    /// A pending campaign: when, and whom etcd's leadership was handed to.
    pub election: Option<(SimInstant, Option<u64>)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MemberError {
    #[error("not found, pd: {0}")]
    NotFound(String),
    #[error("etcdserver: member not found")]
    IdNotFound(u64),
    #[error("no valid pd to transfer etcd leader")]
    NoValidTarget,
    #[error("etcdserver: no leader")]
    NoQuorum,
    #[error("the member has been permanently removed from the cluster")]
    Removed(String),
    #[error("missing data or join a duplicated pd {0}")]
    Duplicated(String),
    #[error("member {0} already exists")]
    Exists(String),
    #[error("member {0} is running; stop it first")]
    Running(String),
    /// etcd's `ErrNotEnoughStartedMembers`.
    #[error("etcdserver: re-configuration failed due to not enough started members")]
    NotEnoughStarted,
    /// etcd's `ErrUnhealthy`.
    #[error("etcdserver: unhealthy cluster")]
    Unhealthy,
    /// etcd's `ErrPeerURLexists`: another member has one of the URLs.
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlsExist,
    /// etcd's `ErrGRPCMemberBadURLs`.
    #[error("etcdserver: given member URLs are invalid")]
    BadUrls,
}

impl Members {
    pub fn in_etcd(&self) -> impl Iterator<Item = &Member> {
        self.list.iter().filter(|m| m.in_etcd)
    }

    pub fn by_name(&self, name: &str) -> Option<&Member> {
        self.list.iter().find(|m| m.name == name)
    }

    fn by_name_mut(&mut self, name: &str) -> Option<&mut Member> {
        self.list.iter_mut().find(|m| m.name == name)
    }

    pub fn by_id(&self, id: u64) -> Option<&Member> {
        self.list.iter().find(|m| m.member_id == id)
    }

    pub fn has_quorum(&self) -> bool {
        let total = self.in_etcd().count();
        let running = self.in_etcd().filter(|m| m.running).count();
        total > 0 && running * 2 > total
    }

    pub fn leader_member(&self) -> Option<&Member> {
        self.leader.and_then(|id| self.by_id(id))
    }

    /// Re-evaluates leadership after any change: drops a leader that lost its process,
    /// its membership or the quorum, and schedules a campaign when one can succeed.
    pub fn reconcile(&mut self, now: SimInstant, delay: Duration) {
        let leader_ok = self.leader.and_then(|id| self.by_id(id)).is_some_and(|m| m.running && m.in_etcd);
        if !self.has_quorum() {
            self.leader = None;
            self.etcd_leader = None;
            self.election = None;
            return;
        }
        if !leader_ok {
            self.leader = None;
            if self.etcd_leader.and_then(|id| self.by_id(id)).is_none_or(|m| !m.running || !m.in_etcd) {
                self.etcd_leader = None;
            }
            if self.election.is_none() {
                self.election = Some((now + delay, self.etcd_leader));
            }
        }
    }

    /// Runs a due campaign: the preferred member (the etcd leader) if it can lead, else
    /// any running member, as etcd's election would pick; leader priorities play no part
    /// here (the leader-priority loop applies them afterwards).
    pub fn campaign(&mut self, rng: &mut StdRng) {
        let Some((_, preferred)) = self.election.take() else { return };
        if !self.has_quorum() {
            return;
        }
        let eligible = |m: &Member| m.running && m.in_etcd;
        let chosen = match preferred.and_then(|id| self.by_id(id)).filter(|m| eligible(m)) {
            Some(m) => m.member_id,
            None => {
                let candidates: Vec<u64> = self.list.iter().filter(|m| eligible(m)).map(|m| m.member_id).collect();
                if candidates.is_empty() {
                    return;
                }
                candidates[rng.random_range(0..candidates.len())]
            }
        };
        self.leader = Some(chosen);
        self.etcd_leader = Some(chosen);
    }

    /// `POST /leader/transfer/{name}`: etcd leadership moves at once, PD leadership after
    /// a campaign.
    pub fn transfer(&mut self, name: &str, now: SimInstant, delay: Duration) -> Result<(), MemberError> {
        let target = self
            .by_name(name)
            .filter(|m| m.running && m.in_etcd)
            .map(|m| m.member_id)
            .ok_or(MemberError::NoValidTarget)?;
        if self.leader == Some(target) {
            return Ok(());
        }
        self.leader = None;
        self.etcd_leader = Some(target);
        self.election = Some((now + delay, Some(target)));
        Ok(())
    }

    /// `POST /leader/resign`: leadership moves to a random other member, if any.
    pub fn resign(&mut self, now: SimInstant, delay: Duration, rng: &mut StdRng) {
        let others: Vec<String> = self
            .list
            .iter()
            .filter(|m| m.running && m.in_etcd && Some(m.member_id) != self.leader)
            .map(|m| m.name.clone())
            .collect();
        if others.is_empty() {
            return;
        }
        let target = others[rng.random_range(0..others.len())].clone();
        let _ = self.transfer(&target, now, delay);
    }

    /// Whether member `id`'s leader-priority check would move leadership now (PD's
    /// `CheckPriority`): it runs, a quorum answers its reads, an etcd leader exists and
    /// is another member, and its own priority is strictly higher than that leader's.
    pub fn priority_check_moves(&self, id: u64) -> bool {
        let Some(me) = self.by_id(id).filter(|m| m.running && m.in_etcd) else { return false };
        if !self.has_quorum() {
            return false;
        }
        let Some(leader) = self.etcd_leader.filter(|l| *l != id).and_then(|l| self.by_id(l)) else { return false };
        me.leader_priority > leader.leader_priority
    }

    /// The next leader-priority check that would move leadership: the earliest tick,
    /// strictly after `now`, of a member for which [`priority_check_moves`] holds. Each
    /// member's ticks fall every `interval` from its process start. The ticks of the
    /// other members would find nothing, and are skipped.
    ///
    /// [`priority_check_moves`]: Self::priority_check_moves
    pub fn next_priority_check(&self, now: SimInstant, interval: Duration) -> Option<(SimInstant, u64)> {
        self.list
            .iter()
            .filter(|m| self.priority_check_moves(m.member_id))
            .map(|m| (super::next_on_grid(m.started_at, interval, now), m.member_id))
            .min()
    }

    /// Member `id`'s leader-priority check at one of its ticks: when it has the higher
    /// priority, etcd leadership moves to it at once and PD leadership after a campaign,
    /// as for [`transfer`](Self::transfer). Returns whether leadership moved.
    pub fn check_priority(&mut self, id: u64, now: SimInstant, delay: Duration) -> bool {
        if !self.priority_check_moves(id) {
            return false;
        }
        let Some(name) = self.by_id(id).map(|m| m.name.clone()) else { return false };
        self.transfer(&name, now, delay).is_ok()
    }

    /// Removes a member from etcd, if etcd's strict reconfiguration check allows it.
    /// Its process exits (etcd stops a removed member).
    pub fn remove(&mut self, name: &str) -> Result<u64, MemberError> {
        let id = self.by_name(name).filter(|m| m.in_etcd).map(|m| m.member_id);
        let id = id.ok_or_else(|| MemberError::NotFound(name.to_owned()))?;
        if !self.has_quorum() {
            return Err(MemberError::NoQuorum);
        }
        self.may_remove(id)?;
        let member = self.by_name_mut(name).ok_or_else(|| MemberError::NotFound(name.to_owned()))?;
        member.in_etcd = false;
        member.running = false;
        Ok(member.member_id)
    }

    /// etcd's `mayRemoveMember` for voting member `id` (in etcd).
    fn may_remove(&self, id: u64) -> Result<(), MemberError> {
        let others: Vec<&Member> = self.in_etcd().filter(|m| m.member_id != id).collect();
        let started = others.iter().filter(|m| m.started).count();
        if started < others.len() / 2 + 1 {
            return Err(MemberError::NotEnoughStarted);
        }
        // A member that is down is not part of the active quorum: it may go.
        if self.by_id(id).is_none_or(|m| !m.running) {
            return Ok(());
        }
        let total = self.in_etcd().count();
        let active = self.in_etcd().filter(|m| m.running).count();
        if active.saturating_sub(1) < 1 + total.saturating_sub(1) / 2 {
            return Err(MemberError::Unhealthy);
        }
        Ok(())
    }

    /// etcd's `mayAddMember` for a new voting member.
    fn may_add(&self) -> Result<(), MemberError> {
        let members = self.in_etcd().count() + 1;
        let started = self.in_etcd().filter(|m| m.started).count();
        // etcd lets a second member join a single one (restoring a cluster).
        let restoring = started == 1 && members == 2;
        if !restoring && started < members / 2 + 1 {
            return Err(MemberError::NotEnoughStarted);
        }
        if self.in_etcd().any(|m| !m.running) {
            return Err(MemberError::Unhealthy);
        }
        Ok(())
    }

    pub fn remove_by_id(&mut self, id: u64) -> Result<String, MemberError> {
        let name = self.by_id(id).filter(|m| m.in_etcd).map(|m| m.name.clone()).ok_or(MemberError::IdNotFound(id))?;
        self.remove(&name)?;
        Ok(name)
    }

    pub fn set_priority(&mut self, name: &str, priority: i64) -> Result<(), MemberError> {
        let member =
            self.by_name_mut(name).filter(|m| m.in_etcd).ok_or_else(|| MemberError::NotFound(name.to_owned()))?;
        member.leader_priority = priority;
        Ok(())
    }

    /// A member of the initial cluster whose process has not run yet: in the
    /// membership, neither running nor started (etcd: it has not published its name).
    pub fn unstart(&mut self, name: &str) -> Result<(), MemberError> {
        let member = self.by_name_mut(name).ok_or_else(|| MemberError::NotFound(name.to_owned()))?;
        (member.running, member.started) = (false, false);
        Ok(())
    }

    /// The process stops (pod deleted, crash); data stays.
    pub fn stop(&mut self, name: &str) -> Result<(), MemberError> {
        let member = self.by_name_mut(name).ok_or_else(|| MemberError::NotFound(name.to_owned()))?;
        member.running = false;
        Ok(())
    }

    /// The process starts again with whatever data it has. With data, a member still in
    /// etcd rejoins; a removed one cannot. Without data it joins as a new member (new ID).
    pub fn start(&mut self, name: &str, now: SimInstant, new_id: u64) -> Result<(), MemberError> {
        let quorum = self.has_quorum();
        let may_add = self.may_add();
        let member = self.by_name_mut(name).ok_or_else(|| MemberError::NotFound(name.to_owned()))?;
        if member.running {
            return Ok(());
        }
        match (member.in_etcd, member.has_data) {
            (true, true) => {}
            (false, true) => return Err(MemberError::Removed(name.to_owned())),
            (true, false) => return Err(MemberError::Duplicated(name.to_owned())),
            (false, false) => {
                if !quorum {
                    return Err(MemberError::NoQuorum);
                }
                may_add?;
                member.member_id = new_id;
                // PD keeps a priority under the member ID; a new ID has none.
                member.leader_priority = 0;
                member.in_etcd = true;
                member.has_data = true;
            }
        }
        member.running = true;
        member.started = true;
        member.started_at = now;
        Ok(())
    }

    pub fn wipe(&mut self, name: &str) -> Result<(), MemberError> {
        let member = self.by_name_mut(name).ok_or_else(|| MemberError::NotFound(name.to_owned()))?;
        if member.running {
            return Err(MemberError::Running(name.to_owned()));
        }
        member.has_data = false;
        Ok(())
    }

    /// etcd's MemberUpdate: the peer URLs the other members dial this one at, a raft
    /// proposal like any membership change (needs a quorum). The member's process
    /// keeps listening where it did: peers reach it only if it listens at the new URL.
    /// Its client URLs and name are its own to publish and stay.
    pub fn update_peer_urls(&mut self, id: u64, urls: Vec<String>) -> Result<(), MemberError> {
        if urls.is_empty() || urls.iter().any(|u| !(u.starts_with("http://") || u.starts_with("https://"))) {
            return Err(MemberError::BadUrls);
        }
        if !self.in_etcd().any(|m| m.member_id == id) {
            return Err(MemberError::IdNotFound(id));
        }
        if self.in_etcd().any(|m| m.member_id != id && m.peer_urls.iter().any(|u| urls.contains(u))) {
            return Err(MemberError::PeerUrlsExist);
        }
        if !self.has_quorum() {
            return Err(MemberError::NoQuorum);
        }
        if let Some(member) = self.list.iter_mut().find(|m| m.member_id == id && m.in_etcd) {
            member.peer_urls = urls;
        }
        Ok(())
    }

    /// A brand-new member joining (`--join`): etcd's MemberAdd, with its quorum and
    /// strict reconfiguration checks (none for the first member).
    pub fn join(&mut self, member: Member, bootstrap: bool) -> Result<(), MemberError> {
        if self.list.iter().any(|m| m.name == member.name) {
            return Err(MemberError::Exists(member.name));
        }
        if !bootstrap {
            if !self.has_quorum() {
                return Err(MemberError::NoQuorum);
            }
            self.may_add()?;
        }
        self.list.push(member);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rand::SeedableRng;

    use super::*;

    fn members(n: usize) -> Members {
        let mut m = Members::default();
        for i in 0..n {
            m.join(
                Member {
                    name: format!("pd-{i}"),
                    member_id: 1 << 60 | i as u64,
                    peer_urls: vec![],
                    client_urls: vec![],
                    leader_priority: 0,
                    binary_version: String::new(),
                    git_hash: String::new(),
                    deploy_path: String::new(),
                    running: true,
                    has_data: true,
                    in_etcd: true,
                    started: true,
                    started_at: SimInstant::default(),
                },
                true,
            )
            .unwrap();
        }
        m
    }

    fn settle(m: &mut Members, rng: &mut StdRng) {
        m.reconcile(SimInstant::default(), Duration::ZERO);
        m.campaign(rng);
    }

    #[test]
    fn a_peer_url_update_needs_a_quorum_a_known_id_and_urls_of_no_other_member() {
        let mut m = members(3);
        for (i, member) in m.list.iter_mut().enumerate() {
            member.peer_urls = vec![format!("http://pd-{i}:2380")];
        }
        let id = m.list[0].member_id;
        m.update_peer_urls(id, vec!["https://pd-0:2381".into()]).unwrap();
        assert_eq!(m.list[0].peer_urls, ["https://pd-0:2381"]);
        assert_eq!(m.update_peer_urls(7, vec!["https://x:1".into()]), Err(MemberError::IdNotFound(7)));
        assert_eq!(m.update_peer_urls(id, vec!["http://pd-1:2380".into()]), Err(MemberError::PeerUrlsExist));
        assert_eq!(m.update_peer_urls(id, vec!["pd-0:2381".into()]), Err(MemberError::BadUrls));
        m.stop("pd-1").unwrap();
        m.stop("pd-2").unwrap();
        assert_eq!(m.update_peer_urls(id, vec!["http://pd-0:2380".into()]), Err(MemberError::NoQuorum));
        assert_eq!(m.list[0].peer_urls, ["https://pd-0:2381"], "a refused update changes nothing");
    }

    #[test]
    fn a_leader_needs_a_running_majority() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut m = members(3);
        settle(&mut m, &mut rng);
        assert!(m.leader.is_some());
        m.stop("pd-0").unwrap();
        m.stop("pd-1").unwrap();
        settle(&mut m, &mut rng);
        assert_eq!(m.leader, None);
        m.start("pd-1", SimInstant::default(), 0).unwrap();
        settle(&mut m, &mut rng);
        assert!(m.leader_member().is_some_and(|l| l.name != "pd-0"));
    }

    #[test]
    fn transfer_leaves_a_gap_then_elects_the_target() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut m = members(3);
        settle(&mut m, &mut rng);
        let target = m.list.iter().find(|x| Some(x.member_id) != m.leader).unwrap().name.clone();
        m.transfer(&target, SimInstant::default(), Duration::from_secs(1)).unwrap();
        assert_eq!(m.leader, None);
        m.campaign(&mut rng);
        assert_eq!(m.leader_member().unwrap().name, target);
        assert_eq!(m.transfer("nope", SimInstant::default(), Duration::ZERO), Err(MemberError::NoValidTarget));
    }

    #[test]
    fn only_a_running_member_with_a_higher_priority_than_the_etcd_leader_moves_it() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut m = members(3);
        settle(&mut m, &mut rng);
        let leader = m.leader.unwrap();
        let ids: Vec<u64> = m.list.iter().map(|x| x.member_id).filter(|id| *id != leader).collect();
        let name = |m: &Members, id: u64| m.by_id(id).unwrap().name.clone();
        assert!(!m.priority_check_moves(ids[0]), "equal priorities");
        m.set_priority(&name(&m, ids[0]), 3).unwrap();
        assert!(m.priority_check_moves(ids[0]));
        assert!(!m.priority_check_moves(leader), "the etcd leader checks nothing");
        m.set_priority(&name(&m, leader), 3).unwrap();
        assert!(!m.priority_check_moves(ids[0]), "not strictly higher");
        m.set_priority(&name(&m, ids[1]), 9).unwrap();
        m.stop(&name(&m, ids[1])).unwrap();
        assert!(!m.priority_check_moves(ids[1]), "a stopped member runs no check");
        m.stop(&name(&m, leader)).unwrap();
        m.start(&name(&m, ids[1]), SimInstant::default(), 0).unwrap();
        m.stop(&name(&m, ids[0])).unwrap();
        m.reconcile(SimInstant::default(), Duration::ZERO);
        assert!(!m.priority_check_moves(ids[1]), "no quorum, no etcd leader");
        assert!(!m.check_priority(ids[1], SimInstant::default(), Duration::ZERO));
    }

    #[test]
    fn a_member_joining_anew_has_no_leader_priority() {
        let mut m = members(3);
        m.set_priority("pd-1", 7).unwrap();
        m.stop("pd-1").unwrap();
        m.remove("pd-1").unwrap();
        m.wipe("pd-1").unwrap();
        m.start("pd-1", SimInstant::default(), 7).unwrap();
        assert_eq!(m.by_name("pd-1").unwrap().leader_priority, 0);
    }

    #[test]
    fn a_removed_member_with_data_cannot_rejoin_but_a_wiped_one_joins_anew() {
        let mut m = members(3);
        let old = m.remove("pd-1").unwrap();
        assert_eq!(m.start("pd-1", SimInstant::default(), 7), Err(MemberError::Removed("pd-1".into())));
        m.wipe("pd-1").unwrap();
        m.start("pd-1", SimInstant::default(), 7).unwrap();
        assert_ne!(m.by_name("pd-1").unwrap().member_id, old);
        assert_eq!(m.remove("nope"), Err(MemberError::NotFound("nope".into())));
    }

    fn new_member(name: &str) -> Member {
        let mut m = members(1).list.remove(0);
        m.name = name.into();
        m.member_id = 1 << 61;
        m
    }

    #[test]
    fn removing_a_running_member_needs_the_other_running_members_to_keep_quorum() {
        let mut m = members(3);
        m.stop("pd-0").unwrap();
        // Two of three run: removing a running one would leave one active of three.
        assert_eq!(m.remove("pd-1"), Err(MemberError::Unhealthy));
        assert!(m.by_name("pd-1").unwrap().in_etcd, "refused: nothing changed");
        // The member that is down may go: the other two keep the quorum of two.
        let id = m.by_name("pd-0").unwrap().member_id;
        assert_eq!(m.remove_by_id(id), Ok("pd-0".into()));
        // Two running of two: one may go (etcd's `1 + (n - 1) / 2` is 1 for n = 2).
        assert!(m.remove("pd-1").is_ok());
        // The last member never goes.
        assert_eq!(m.remove("pd-2"), Err(MemberError::NotEnoughStarted));
        assert_eq!(MemberError::Unhealthy.to_string(), "etcdserver: unhealthy cluster");
    }

    #[test]
    fn removing_needs_a_quorum_of_started_members_left() {
        let mut m = members(5);
        for name in ["pd-3", "pd-4"] {
            let member = m.list.iter_mut().find(|x| x.name == name).unwrap();
            (member.started, member.running) = (false, false);
        }
        // Four left, two of them never started: fewer than three.
        assert_eq!(m.remove("pd-0"), Err(MemberError::NotEnoughStarted));
        assert_eq!(
            MemberError::NotEnoughStarted.to_string(),
            "etcdserver: re-configuration failed due to not enough started members"
        );
        // Removing one that never started leaves three started of four.
        assert!(m.remove("pd-4").is_ok());
    }

    #[test]
    fn a_member_joins_only_while_every_member_runs_and_enough_have_started() {
        let mut m = members(3);
        m.stop("pd-2").unwrap();
        assert_eq!(m.join(new_member("pd-9"), false), Err(MemberError::Unhealthy));
        assert!(m.by_name("pd-9").is_none());
        m.start("pd-2", SimInstant::default(), 0).unwrap();
        assert_eq!(m.join(new_member("pd-9"), false), Ok(()));

        // A wiped member re-joining anew is an add, with the same checks.
        let mut m = members(3);
        m.stop("pd-1").unwrap();
        m.remove("pd-1").unwrap();
        m.wipe("pd-1").unwrap();
        m.stop("pd-2").unwrap();
        assert_eq!(m.start("pd-1", SimInstant::default(), 7), Err(MemberError::NoQuorum));
        let mut m = members(4);
        m.stop("pd-1").unwrap();
        m.remove("pd-1").unwrap();
        m.wipe("pd-1").unwrap();
        m.stop("pd-3").unwrap();
        assert_eq!(m.start("pd-1", SimInstant::default(), 7), Err(MemberError::Unhealthy));
        m.start("pd-3", SimInstant::default(), 0).unwrap();
        assert_eq!(m.start("pd-1", SimInstant::default(), 7), Ok(()));

        // Too few started: two of three never ran, a fourth would need three.
        let mut m = members(3);
        for member in m.list.iter_mut().skip(1) {
            member.started = false;
        }
        assert_eq!(m.join(new_member("pd-9"), false), Err(MemberError::NotEnoughStarted));
        // A second member may join a single one.
        let mut m = members(1);
        assert_eq!(m.join(new_member("pd-9"), false), Ok(()));
    }

    #[test]
    fn initial_members_that_never_ran_do_not_count_as_started() {
        let mut m = members(3);
        m.unstart("pd-1").unwrap();
        m.unstart("pd-2").unwrap();
        assert_eq!(m.join(new_member("pd-9"), false), Err(MemberError::NoQuorum));
        m.start("pd-1", SimInstant::default(), 0).unwrap();
        assert!(m.by_name("pd-1").unwrap().started);
        // Two of the three started: removing one leaves one started of two.
        assert_eq!(m.remove("pd-0"), Err(MemberError::NotEnoughStarted));
        assert_eq!(m.join(new_member("pd-9"), false), Err(MemberError::NotEnoughStarted));
    }
}

//! PD members: health, membership, leader, removal, leader moves, readiness, identity.

use reqwest::Method;
use url::Url;

use super::{Call, PdClient, decode, segment};
use crate::error::{PdError, Result, Subject};
use crate::types::{ClusterInfo, Member, MemberHealth, MemberReadiness, Members, MembersWire, PdStatus};

impl PdClient {
    /// `GET /health`: every etcd member with PD's probe of its `/ping`. Answered by the
    /// member called, never forwarded.
    pub async fn health(&self) -> Result<Vec<MemberHealth>> {
        const PATH: &str = "/pd/api/v1/health";
        let answer = self.execute(&Call::get(PATH)).await?;
        let list: Option<Vec<MemberHealth>> = decode(PATH, &answer)?;
        Ok(list.unwrap_or_default())
    }

    /// `GET /members`: members, PD leader, etcd leader and the cluster ID.
    pub async fn members(&self) -> Result<Members> {
        const PATH: &str = "/pd/api/v1/members";
        let answer = self.execute(&Call::get(PATH)).await?;
        let wire: MembersWire = decode(PATH, &answer)?;
        Ok(wire.into())
    }

    /// `GET /leader`: the PD leader, `None` while there is none (PD writes `null`).
    pub async fn leader(&self) -> Result<Option<Member>> {
        const PATH: &str = "/pd/api/v1/leader";
        let answer = self.execute(&Call::get(PATH)).await?;
        let leader: Option<Member> = decode(PATH, &answer)?;
        Ok(leader.filter(|m| !m.name.is_empty() || m.member_id != 0))
    }

    /// `DELETE /members/name/{name}`. Unknown name: [`PdError::NotFound`] (404).
    /// Removing a member does not stop its process; delete its data too.
    pub async fn delete_member_by_name(&self, name: &str) -> Result<()> {
        let call = Call::write_at(
            Method::DELETE,
            "/pd/api/v1/members/name/{name}",
            format!("/pd/api/v1/members/name/{}", segment(name)),
        )
        .subject(Subject::MemberName(name.to_owned()));
        self.execute(&call).await.map(drop)
    }

    /// `DELETE /members/id/{id}`. PD answers an unknown ID with etcd's 500 "member not
    /// found", typed here as [`PdError::NotFound`].
    pub async fn delete_member_by_id(&self, id: u64) -> Result<()> {
        let call = Call::write_at(Method::DELETE, "/pd/api/v1/members/id/{id}", format!("/pd/api/v1/members/id/{id}"))
            .subject(Subject::MemberId(id));
        self.execute(&call).await.map(drop)
    }

    /// `POST /v3/cluster/member/update` (etcd's gRPC gateway, which PD serves on its
    /// client URLs): the peer URLs the other members dial member `id` at. A raft
    /// proposal answered by the member called (no PD leader needed, a quorum is).
    /// Unknown ID: [`PdError::NotFound`]; a URL another member has: etcd's 400.
    pub async fn update_member_peer_urls(&self, id: u64, peer_urls: &[String]) -> Result<()> {
        let body = serde_json::json!({"ID": id.to_string(), "peerURLs": peer_urls});
        let call =
            Call::write(Method::POST, "/v3/cluster/member/update").json_body(&body).subject(Subject::MemberId(id));
        self.execute(&call).await.map(drop)
    }

    /// `POST /leader/transfer/{name}`: move the etcd leader (and so the PD leader) to
    /// that member. Unknown name: [`PdError::UnknownTransferTarget`] (PD's 500).
    pub async fn transfer_leader(&self, name: &str) -> Result<()> {
        let call = Call::write_at(
            Method::POST,
            "/pd/api/v1/leader/transfer/{name}",
            format!("/pd/api/v1/leader/transfer/{}", segment(name)),
        )
        .subject(Subject::MemberName(name.to_owned()));
        self.execute(&call).await.map(drop)
    }

    /// `POST /leader/resign`: move the leader to a random other member.
    pub async fn resign_leader(&self) -> Result<()> {
        self.execute(&Call::write(Method::POST, "/pd/api/v1/leader/resign")).await.map(drop)
    }

    /// `GET <member>/pd/api/v2/ready` on one member (its client URL, e.g. from
    /// [`Member::client_urls`]), with this client's TLS and timeout and no failover.
    pub async fn member_ready(&self, member_client_url: &str) -> Result<MemberReadiness> {
        let base = Url::parse(member_client_url)
            .map_err(|e| PdError::Config(format!("invalid member URL {member_client_url:?}: {e}")))?;
        let call = Call::get("/pd/api/v2/ready").accept(&[404, 500]);
        let answer = self.execute_on(&call, Some(&base)).await?;
        Ok(match answer.status {
            404 => MemberReadiness::Unsupported,
            500 => MemberReadiness::NotReady,
            _ => MemberReadiness::Ready,
        })
    }

    /// `GET /cluster`: the cluster ID (a u64, usually above 2^53) and `max_peer_count`.
    pub async fn cluster(&self) -> Result<ClusterInfo> {
        const PATH: &str = "/pd/api/v1/cluster";
        let answer = self.execute(&Call::get(PATH)).await?;
        decode(PATH, &answer)
    }

    /// The PD cluster ID.
    pub async fn cluster_id(&self) -> Result<u64> {
        Ok(self.cluster().await?.id)
    }

    /// `GET /status` of the member that answers (version, start time).
    pub async fn status(&self) -> Result<PdStatus> {
        const PATH: &str = "/pd/api/v1/status";
        let answer = self.execute(&Call::get(PATH)).await?;
        decode(PATH, &answer)
    }
}

//! Region checks and statistics.

use super::{Call, PdClient, decode};
use crate::error::Result;
use crate::types::{PeerCheck, PeerKind, RegionHealth, RegionStats, RegionVoters, RegionsWire};

impl PdClient {
    /// `GET /regions/check/down-peer`: regions with a peer PD sees as down, with the
    /// stores holding those peers.
    pub async fn down_peer_regions(&self) -> Result<PeerCheck> {
        self.peer_check("/pd/api/v1/regions/check/down-peer", PeerKind::Down).await
    }

    /// `GET /regions/check/pending-peer`: regions with a peer still catching up.
    pub async fn pending_peer_regions(&self) -> Result<PeerCheck> {
        self.peer_check("/pd/api/v1/regions/check/pending-peer", PeerKind::Pending).await
    }

    /// `GET /regions/check/miss-peer`: regions with fewer voters than wanted.
    pub async fn missing_peer_regions(&self) -> Result<PeerCheck> {
        self.peer_check("/pd/api/v1/regions/check/miss-peer", PeerKind::Missing).await
    }

    /// The three checks a restart depends on, read one after the other.
    pub async fn region_health(&self) -> Result<RegionHealth> {
        Ok(RegionHealth {
            down: self.down_peer_regions().await?,
            pending: self.pending_peer_regions().await?,
            missing: self.missing_peer_regions().await?,
        })
    }

    async fn peer_check(&self, path: &'static str, kind: PeerKind) -> Result<PeerCheck> {
        // PD may label this body application/octet-stream; it is JSON all the same.
        let answer = self.execute(&Call::get(path)).await?;
        let wire: RegionsWire = decode(path, &answer)?;
        Ok(wire.into_check(kind))
    }

    /// `GET /regions/store/{id}`: every region with a peer on the store, with the
    /// stores of its voters.
    pub async fn store_regions(&self, store_id: u64) -> Result<Vec<RegionVoters>> {
        let path = format!("/pd/api/v1/regions/store/{store_id}");
        let answer = self.execute(&Call::get_at("/pd/api/v1/regions/store/{id}", path.clone())).await?;
        let wire: RegionsWire = decode(&path, &answer)?;
        Ok(wire.into_voters())
    }

    /// `GET /stats/region` over the whole key space.
    pub async fn region_stats(&self) -> Result<RegionStats> {
        const PATH: &str = "/pd/api/v1/stats/region";
        let call = Call::get(PATH).query("start_key", "").query("end_key", "");
        let answer = self.execute(&call).await?;
        decode(PATH, &answer)
    }
}

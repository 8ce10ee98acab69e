//! PD configuration.

use super::{Call, PdClient, decode};
use crate::error::Result;
use crate::types::{PdConfig, ReplicationConfig};

impl PdClient {
    /// `GET /config`: replication and schedule settings (answered by the member called).
    pub async fn config(&self) -> Result<PdConfig> {
        const PATH: &str = "/pd/api/v1/config";
        let answer = self.execute(&Call::get(PATH)).await?;
        decode(PATH, &answer)
    }

    /// `GET /config/replicate`: max-replicas, location-labels, isolation level.
    pub async fn replication_config(&self) -> Result<ReplicationConfig> {
        const PATH: &str = "/pd/api/v1/config/replicate";
        let answer = self.execute(&Call::get(PATH)).await?;
        decode(PATH, &answer)
    }
}

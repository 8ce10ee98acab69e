//! Create-or-patch of child objects, guarded by a hash of the desired state.
//!
//! The hash of what the operator renders is recorded on the child
//! (`core.tikv.org/spec-hash`). An unchanged hash means no write at all; a changed one
//! is one JSON merge patch carrying the live resourceVersion, so a concurrent change
//! makes the patch fail with 409 instead of overwriting it.

use std::fmt::Debug;

use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tikv_operator_api::names::{ANNOTATION_SPEC_HASH, FIELD_MANAGER};

/// FNV-1a, 64 bits: stable across builds and platforms (std's hasher is not).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The stable hash of a value's JSON form, as 16 hex digits.
pub fn hash_of<T: Serialize>(value: &T) -> String {
    // Our rendered objects always encode; an empty encoding would only make a needless write.
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    format!("{:016x}", fnv1a64(&bytes))
}

/// The stable hash of a value's JSON form in `len` characters of `[a-z0-9]`, for names.
pub fn short_hash<T: Serialize>(value: &T, len: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut n = fnv1a64(&serde_json::to_vec(value).unwrap_or_default());
    let mut out = String::with_capacity(len);
    for _ in 0..len {
        out.push(char::from(ALPHABET[(n % 36) as usize]));
        n /= 36;
    }
    out
}

/// What [`apply`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    Created,
    Patched,
    Unchanged,
}

impl Applied {
    pub fn wrote(self) -> bool {
        self != Applied::Unchanged
    }
}

pub fn post_params() -> PostParams {
    PostParams { field_manager: Some(FIELD_MANAGER.into()), ..PostParams::default() }
}

pub fn patch_params() -> PatchParams {
    PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() }
}

/// Records the desired state's hash on `desired`, and returns it.
pub fn stamp_hash<K: Resource + Serialize>(desired: &mut K) -> String {
    desired.meta_mut().annotations.get_or_insert_default().remove(ANNOTATION_SPEC_HASH);
    let hash = hash_of(&*desired);
    desired.meta_mut().annotations.get_or_insert_default().insert(ANNOTATION_SPEC_HASH.into(), hash.clone());
    hash
}

/// Whether a live object was rendered from the desired state with this hash.
pub fn has_hash<K: Resource>(live: &K, hash: &str) -> bool {
    live.annotations().get(ANNOTATION_SPEC_HASH).is_some_and(|h| h == hash)
}

/// Creates `desired` if `live` is `None`, patches it if its recorded hash differs, and
/// does nothing otherwise. Errors are the API's: 409 (exists, or changed since read)
/// is for the calling task to turn into a Wait or Retry.
pub async fn apply<K>(api: &Api<K>, live: Option<&K>, mut desired: K) -> Result<Applied, kube::Error>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
{
    let hash = stamp_hash(&mut desired);
    match live {
        None => {
            api.create(&post_params(), &desired).await?;
            Ok(Applied::Created)
        }
        Some(live) if has_hash(live, &hash) => Ok(Applied::Unchanged),
        Some(live) => {
            let mut patch = serde_json::to_value(&desired).map_err(kube::Error::SerdeError)?;
            if let Some(object) = patch.as_object_mut() {
                object.remove("status");
                if let Some(meta) = object.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                    meta.insert("resourceVersion".into(), live.resource_version().unwrap_or_default().into());
                }
            }
            api.patch(&live.name_any(), &patch_params(), &Patch::Merge(&patch)).await?;
            Ok(Applied::Patched)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    fn config_map(data: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta { name: Some("c".into()), namespace: Some("ns".into()), ..ObjectMeta::default() },
            data: Some([("config.toml".to_string(), data.to_string())].into()),
            ..ConfigMap::default()
        }
    }

    #[test]
    fn the_hash_is_stable_and_follows_the_content() {
        assert_eq!(hash_of(&config_map("a")), hash_of(&config_map("a")));
        assert_ne!(hash_of(&config_map("a")), hash_of(&config_map("b")));
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        let name = short_hash(&"x", 10);
        assert_eq!(name.len(), 10);
        assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }

    #[test]
    fn stamping_ignores_a_previous_stamp() {
        let mut a = config_map("a");
        let first = stamp_hash(&mut a);
        let again = stamp_hash(&mut a);
        assert_eq!(first, again);
        assert!(has_hash(&a, &first));
    }

    #[tokio::test]
    async fn create_then_nothing_then_one_patch() {
        let env = crate::testing::TestEnv::start().await;
        let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), "default");
        let desired = || {
            let mut c = config_map("a");
            c.metadata.namespace = Some("default".into());
            c
        };
        assert_eq!(apply(&api, None, desired()).await.unwrap(), Applied::Created);
        let live = api.get("c").await.unwrap();
        let writes = env.writes();
        assert_eq!(apply(&api, Some(&live), desired()).await.unwrap(), Applied::Unchanged);
        assert_eq!(env.writes(), writes, "an unchanged desired state makes no write");

        let mut changed = desired();
        changed.data = Some([("config.toml".to_string(), "b".to_string())].into());
        assert_eq!(apply(&api, Some(&live), changed.clone()).await.unwrap(), Applied::Patched);
        assert_eq!(api.get("c").await.unwrap().data.unwrap()["config.toml"], "b");

        // The old read is stale now: the precondition refuses a second patch from it.
        changed.data = Some([("config.toml".to_string(), "c".to_string())].into());
        let error = apply(&api, Some(&live), changed).await.unwrap_err();
        assert!(crate::error::is_conflict(&error), "{error}");
    }
}

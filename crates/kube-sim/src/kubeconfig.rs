//! The kubeconfig that points kube-rs and kubectl at the server: plain http, one context
//! with namespace `default`, and either no credentials (the server's administrator, see
//! [`crate::auth`]) or a bearer token (an identity registered with
//! [`crate::KubeSim::add_token`] or [`crate::KubeSim::service_account_token`]).

use std::path::Path;

pub fn render(url: &str) -> String {
    render_user(url, "{}")
}

/// A kubeconfig whose user presents `token` as `Authorization: Bearer <token>`.
pub fn render_with_token(url: &str, token: &str) -> String {
    // A JSON string is a valid YAML flow scalar, whatever the token holds.
    let quoted = serde_json::Value::String(token.to_string()).to_string();
    render_user(url, &format!("\n    token: {quoted}"))
}

/// A kubeconfig for an https server whose certificate `ca_pem` signed, presenting `token`.
pub fn render_with_token_and_ca(url: &str, token: &str, ca_pem: &str) -> String {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    render_with_token(url, token).replacen(
        &format!("    server: {url}\n"),
        &format!("    server: {url}\n    certificate-authority-data: {ca}\n"),
        1,
    )
}

fn render_user(url: &str, user: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kube-sim
  cluster:
    server: {url}
users:
- name: kube-sim
  user: {user}
contexts:
- name: kube-sim
  context:
    cluster: kube-sim
    user: kube-sim
    namespace: default
current-context: kube-sim
preferences: {{}}
"
    )
}

pub fn write(path: &Path, url: &str) -> std::io::Result<()> {
    write_file(path, &render(url))
}

/// Writes [`render_with_token`]'s kubeconfig to `path`.
pub fn write_with_token(path: &Path, url: &str, token: &str) -> std::io::Result<()> {
    write_file(path, &render_with_token(url, token))
}

/// Writes [`render_with_token_and_ca`]'s kubeconfig to `path`.
pub fn write_with_token_and_ca(path: &Path, url: &str, token: &str, ca_pem: &str) -> std::io::Result<()> {
    write_file(path, &render_with_token_and_ca(url, token, ca_pem))
}

fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_token_kubeconfig_carries_the_token_for_its_user() {
        let text = super::render_with_token("http://127.0.0.1:1", "abc.def");
        let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(doc["users"][0]["user"]["token"], "abc.def");
        assert_eq!(doc["clusters"][0]["cluster"]["server"], "http://127.0.0.1:1");
        let tls = super::render_with_token_and_ca("https://127.0.0.1:1", "t", "PEM");
        let doc: serde_json::Value = serde_saphyr::from_str(&tls).unwrap();
        assert_eq!(doc["clusters"][0]["cluster"]["certificate-authority-data"], "UEVN");
        assert_eq!(doc["users"][0]["user"]["token"], "t");
        let plain: serde_json::Value = serde_saphyr::from_str(&super::render("http://x")).unwrap();
        assert_eq!(plain["users"][0]["user"], serde_json::json!({}));
    }
}

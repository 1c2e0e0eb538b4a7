//! `ha-lb kube configs`, `ha-lb kube static-pod`, `ha-lb completions` and the man pages, run
//! as the binary: every generated configuration passes `check-config`; the manifest is parsed
//! as YAML and each field the issue names is checked.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use yaml_rust2::{Yaml, YamlLoader};

fn ha_lb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ha-lb"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("halb-kube-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn configs(dir: &TempDir, extra: &[&str]) -> Output {
    let out_dir = dir.path("");
    let mut args = vec![
        "kube",
        "configs",
        "--vip",
        "192.0.2.100/24",
        "--interface",
        "eth0",
        "--node",
        "cp1=192.0.2.11",
        "--node",
        "cp2=192.0.2.12",
        "--node",
        "cp3=192.0.2.13",
        "--out-dir",
        &out_dir,
    ];
    args.extend_from_slice(extra);
    ha_lb(&args)
}

#[test]
fn configs_are_valid_for_check_config_in_both_topologies() {
    let dir = TempDir::new("both");
    let stdout = ok(&configs(&dir, &[]));
    assert_eq!(stdout, "controlPlaneEndpoint: 192.0.2.100:8443\n");
    for node in ["cp1", "cp2", "cp3"] {
        let file = dir.path(&format!("{node}.toml"));
        let summary = ok(&ha_lb(&["check-config", &file]));
        assert!(
            summary.contains("listener apiserver: 192.0.2.100:8443 -> pool apiservers"),
            "{summary}"
        );
    }
    let cp1 = ok(&ha_lb(&["check-config", &dir.path("cp1.toml")]));
    assert!(cp1.contains("priority 150"), "{cp1}");
    let cp3 = ok(&ha_lb(&["check-config", &dir.path("cp3.toml")]));
    assert!(cp3.contains("priority 130"), "{cp3}");

    let ext = TempDir::new("ext");
    let out = configs(&ext, &["--topology", "external", "--vrrp-version", "2"]);
    assert!(!out.status.success(), "external without --apiserver");
    let stdout = ok(&configs(
        &ext,
        &[
            "--topology",
            "external",
            "--vrrp-version",
            "2",
            "--advert-interval-ms",
            "1000",
            "--apiserver",
            "192.0.2.21:6443",
            "--apiserver",
            "192.0.2.22:6443",
            "--ca-file",
            "/etc/kubernetes/pki/ca.crt",
        ],
    ));
    assert_eq!(stdout, "controlPlaneEndpoint: 192.0.2.100:6443\n");
    let summary = ok(&ha_lb(&["check-config", &ext.path("cp2.toml")]));
    assert!(summary.contains("VRRPv2"), "{summary}");
    assert!(summary.contains("192.0.2.100:6443"), "{summary}");
}

#[test]
fn configs_refuse_what_cannot_work() {
    let dir = TempDir::new("bad");
    let out = configs(&dir, &["--port", "6443"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another port"));
    let out = configs(&dir, &["--node", "cp1=192.0.2.14"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("named twice"));
    assert!(
        !Path::new(&dir.path("cp1.toml")).exists(),
        "nothing written on error"
    );
}

fn manifest(config: &str, image: Option<&str>) -> Yaml {
    let mut args = vec!["kube", "static-pod", "--config", config];
    if let Some(i) = image {
        args.extend_from_slice(&["--image", i]);
    }
    let text = ok(&ha_lb(&args));
    let mut docs = YamlLoader::load_from_str(&text).unwrap();
    assert_eq!(docs.len(), 1, "{text}");
    docs.remove(0)
}

fn strings(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn static_pod_has_every_field_a_control_plane_node_needs() {
    let dir = TempDir::new("pod");
    ok(&configs(&dir, &["--ca-file", "/etc/kubernetes/pki/ca.crt"]));
    let config = dir.path("cp1.toml");
    let pod = manifest(&config, Some("registry.example/ha-lb:1.2"));
    assert_eq!(pod["apiVersion"].as_str(), Some("v1"));
    assert_eq!(pod["kind"].as_str(), Some("Pod"));
    assert_eq!(pod["metadata"]["namespace"].as_str(), Some("kube-system"));
    let spec = &pod["spec"];
    assert_eq!(spec["hostNetwork"].as_bool(), Some(true));
    assert_eq!(
        spec["priorityClassName"].as_str(),
        Some("system-node-critical")
    );
    let c = &spec["containers"][0];
    assert_eq!(c["image"].as_str(), Some("registry.example/ha-lb:1.2"));
    assert_eq!(strings(&c["command"]), ["/usr/bin/ha-lb"]);
    let args = strings(&c["args"]);
    assert_eq!(&args[..3], ["run", "--config", config.as_str()]);
    assert_eq!(
        strings(&c["securityContext"]["capabilities"]["add"]),
        ["NET_ADMIN", "NET_RAW"],
        "no NET_BIND_SERVICE for port 8443"
    );
    assert_eq!(
        strings(&c["securityContext"]["capabilities"]["drop"]),
        ["ALL"]
    );
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"].as_str(), Some(path), "{probe}");
        assert_eq!(get["port"].as_i64(), Some(9555), "{probe}");
        assert_eq!(get["host"].as_str(), Some("127.0.0.1"), "{probe}");
    }
    assert_eq!(c["readinessProbe"]["periodSeconds"].as_i64(), Some(1));
    // The config and the CA, read-only, from the node at the same paths.
    let mounts = c["volumeMounts"].as_vec().unwrap();
    let volumes = spec["volumes"].as_vec().unwrap();
    for path in [config.as_str(), "/etc/kubernetes/pki/ca.crt"] {
        let m = mounts
            .iter()
            .find(|m| m["mountPath"].as_str() == Some(path))
            .unwrap_or_else(|| panic!("no mount of {path}"));
        assert_eq!(m["readOnly"].as_bool(), Some(true));
        let v = volumes
            .iter()
            .find(|v| v["name"] == m["name"])
            .unwrap_or_else(|| panic!("no volume for {path}"));
        assert_eq!(v["hostPath"]["path"].as_str(), Some(path));
        assert_eq!(v["hostPath"]["type"].as_str(), Some("File"));
    }
    assert_eq!(mounts.len(), 2);
    assert_eq!(volumes.len(), 2);

    // The default image is this version's.
    let pod = manifest(&config, None);
    assert_eq!(
        pod["spec"]["containers"][0]["image"].as_str(),
        Some(format!("localhost/ha-lb:{}", env!("CARGO_PKG_VERSION")).as_str())
    );
}

#[test]
fn static_pod_adds_net_bind_service_below_1024_and_needs_admin() {
    let dir = TempDir::new("pod443");
    let file = dir.path("lb.toml");
    std::fs::write(
        &file,
        "[listeners.https]\nlisten = \"192.0.2.100:443\"\npool = \"p\"\n\n[pools.p]\nbackends = [{ address = \"192.0.2.21:443\" }]\n\n[admin]\nlisten = \"0.0.0.0:9555\"\n",
    )
    .unwrap();
    let pod = manifest(&file, None);
    let c = &pod["spec"]["containers"][0];
    assert_eq!(
        strings(&c["securityContext"]["capabilities"]["add"]),
        ["NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE"]
    );
    // A wildcard admin address is probed on loopback.
    assert_eq!(
        c["livenessProbe"]["httpGet"]["host"].as_str(),
        Some("127.0.0.1")
    );

    std::fs::write(
        &file,
        "[listeners.https]\nlisten = \"192.0.2.100:443\"\npool = \"p\"\n\n[pools.p]\nbackends = [{ address = \"192.0.2.21:443\" }]\n",
    )
    .unwrap();
    let out = ha_lb(&["kube", "static-pod", "--config", &file]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("[admin]"));
    let out = ha_lb(&["kube", "static-pod", "--config", "relative.toml"]);
    assert!(!out.status.success());
}

#[test]
fn completions_and_man_pages_come_from_the_command_line_definition() {
    let bash = ok(&ha_lb(&["completions", "bash"]));
    assert!(
        bash.contains("check-config") && bash.contains("static-pod"),
        "bash"
    );
    let zsh = ok(&ha_lb(&["completions", "zsh"]));
    assert!(zsh.starts_with("#compdef ha-lb"), "zsh");
    let fish = ok(&ha_lb(&["completions", "fish"]));
    assert!(fish.contains("complete -c ha-lb"), "fish");

    let dir = TempDir::new("man");
    ok(&ha_lb(&["man", &dir.path("")]));
    let page = std::fs::read_to_string(dir.0.join("ha-lb.1")).unwrap();
    assert!(page.contains(".TH ha-lb 1"), "{page}");
    assert!(page.contains("check\\-config"), "{page}");
    let sub = std::fs::read_to_string(dir.0.join("ha-lb-kube-configs.1")).unwrap();
    assert!(sub.contains("controlPlaneEndpoint"), "{sub}");
    assert!(
        !dir.0.join("ha-lb-man.1").exists(),
        "hidden subcommands get no page"
    );
}

//! deploy/: every Kubernetes manifest passes the Kubernetes API schema (kubernetes-validate from
//! PyPI, in the project's venv, installed by scripts/install-deps.sh; strict: unknown fields are
//! errors), the NetworkAttachmentDefinition and the PodMonitor pass their CRDs written down in
//! tests/schemas/ (Multus, the Prometheus operator), the conflists inside the manifests pass the
//! plugin's own rules, the DaemonSet's arguments match its mounts, its probes and the
//! PodMonitor its metrics port, and the systemd unit passes `systemd-analyze verify`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use macvlan_host::commands::conflist;
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The oldest and the newest Kubernetes API the validator ships schemas for.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.25.0", "1.34.0"];

fn path(rel: &str) -> PathBuf {
    Path::new(ROOT).join(rel)
}

/// A program of the project's Python venv.
fn venv(program: &str) -> Command {
    let bin = path("target/venv/bin").join(program);
    assert!(
        bin.exists(),
        "{} is missing: run scripts/install-deps.sh (it installs kubernetes-validate into target/venv)",
        bin.display()
    );
    let mut cmd = Command::new(bin);
    cmd.current_dir(ROOT);
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `kubernetes-validate --strict -k VERSION FILES`.
fn kubernetes_validate(version: &str, files: &[PathBuf]) -> Output {
    venv("kubernetes-validate")
        .args(["--strict", "-k", version])
        .args(files)
        .output()
        .expect("run kubernetes-validate")
}

/// Every YAML document of `rel`, as JSON.
fn documents(rel: &str) -> Vec<Value> {
    let out = venv("python")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
        ])
        .arg(path(rel))
        .output()
        .expect("run python");
    assert!(out.status.success(), "{rel}: {}", text(&out));
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn built_in_kinds_pass_the_kubernetes_api_schema() {
    let files = [
        path("deploy/daemonset.yaml"),
        path("deploy/configmap.yaml"),
        path("tests/schemas/network-attachment-definition-crd.yaml"),
        path("tests/schemas/podmonitor-crd.yaml"),
    ];
    for version in KUBERNETES_VERSIONS {
        let out = kubernetes_validate(version, &files);
        let report = text(&out);
        assert!(out.status.success(), "Kubernetes {version}:\n{report}");
        assert_eq!(
            report.matches(" passed for resource ").count(),
            files.len(),
            "one pass per manifest, against Kubernetes {version}:\n{report}"
        );
    }
}

#[test]
fn the_validator_refuses_a_broken_daemonset() {
    // Proof that the check above can fail: a misspelt field and a wrong type.
    let dir = std::env::temp_dir().join(format!("mvh-{}-manifests", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = std::fs::read_to_string(path("deploy/daemonset.yaml")).unwrap();
    for (from, to, field) in [
        (
            "mountPropagation:",
            "mountPropogation:",
            "volumeMounts.3: Additional properties are not allowed ('mountPropogation'",
        ),
        (
            "hostNetwork: true",
            "hostNetwork: \"yes\"",
            "spec.template.spec.hostNetwork: 'yes' is not of type 'boolean'",
        ),
    ] {
        let broken = dir.join("daemonset.yaml");
        std::fs::write(&broken, good.replacen(from, to, 1)).unwrap();
        let out = kubernetes_validate(KUBERNETES_VERSIONS[1], &[broken]);
        assert!(!out.status.success(), "{field} accepted:\n{}", text(&out));
        assert!(
            text(&out).contains(field) || text(&out).contains("yes"),
            "{}",
            text(&out)
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `custom_resource.py CRD RESOURCE`: the resource against the CRD that defines it.
fn custom_resource(crd: &str, resource: &Path) -> Output {
    venv("python")
        .args(["tests/schemas/custom_resource.py", crd])
        .arg(resource)
        .output()
        .unwrap()
}

#[test]
fn the_network_attachment_definition_passes_the_multus_crd() {
    let out = custom_resource(
        "tests/schemas/network-attachment-definition-crd.yaml",
        &path("deploy/network-attachment-definition.yaml"),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).starts_with("PASS "), "{}", text(&out));
}

#[test]
fn the_pod_monitor_passes_the_prometheus_operator_crd_and_scrapes_the_metrics_port() {
    const CRD: &str = "tests/schemas/podmonitor-crd.yaml";
    let out = custom_resource(CRD, &path("deploy/podmonitor.yaml"));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).starts_with("PASS "), "{}", text(&out));
    // The check can fail: a misspelt field and a duration Prometheus would not parse.
    let dir = std::env::temp_dir().join(format!("mvh-{}-podmonitor", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = std::fs::read_to_string(path("deploy/podmonitor.yaml")).unwrap();
    for (from, to, named) in [
        (
            "podMetricsEndpoints:",
            "podMetricEndpoints:",
            "podMetricEndpoints",
        ),
        ("interval: 30s", "interval: 30 seconds", "30 seconds"),
    ] {
        let broken = dir.join("podmonitor.yaml");
        std::fs::write(&broken, good.replacen(from, to, 1)).unwrap();
        let out = custom_resource(CRD, &broken);
        assert!(!out.status.success(), "{named} accepted:\n{}", text(&out));
        assert!(text(&out).contains(named), "{}", text(&out));
    }
    std::fs::remove_dir_all(&dir).unwrap();

    // It selects the DaemonSet's pods and scrapes the port the watcher listens on.
    let monitor = &documents("deploy/podmonitor.yaml")[0];
    let daemonset = &documents("deploy/daemonset.yaml")[0];
    let pod = &daemonset["spec"]["template"];
    for (key, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(&pod["metadata"]["labels"][key], value, "label {key}");
    }
    assert_eq!(
        monitor["metadata"]["namespace"],
        daemonset["metadata"]["namespace"]
    );
    let container = &pod["spec"]["containers"][0];
    let endpoint = &monitor["spec"]["podMetricsEndpoints"][0];
    let port = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == endpoint["port"])
        .expect("the PodMonitor's port is a container port");
    let args = container["args"].as_array().unwrap();
    let listen: std::net::SocketAddr = arg_after(args, "--metrics-address").parse().unwrap();
    assert_eq!(port["containerPort"], listen.port());
    assert_eq!(endpoint["path"], "/metrics");
}

#[test]
fn conflists_in_the_manifests_pass_the_plugins_rules() {
    let configmap = &documents("deploy/configmap.yaml")[0];
    let nad = &documents("deploy/network-attachment-definition.yaml")[0];
    let mut conflists: Vec<(String, String)> = configmap["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(key, v)| (format!("configmap {key}"), v.as_str().unwrap().to_string()))
        .collect();
    conflists.push((
        "NetworkAttachmentDefinition spec.config".into(),
        nad["spec"]["config"].as_str().unwrap().to_string(),
    ));
    assert_eq!(conflists.len(), 2);
    for (what, list) in conflists {
        conflist::validate(list.as_bytes()).unwrap_or_else(|e| panic!("{what}: {e}"));
        let version = serde_json::from_str::<Value>(&list).unwrap()["cniVersion"].clone();
        // The reference macvlan in the chain (Debian's plugins 1.1.1) speaks up to 1.0.0.
        assert_eq!(version, "1.0.0", "{what}");
    }
}

/// `--flag VALUE` in a container's args.
fn arg_after<'a>(args: &'a [Value], flag: &str) -> &'a str {
    let at = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("no {flag}"));
    args[at + 1].as_str().unwrap()
}

#[test]
fn the_daemonset_wires_arguments_mounts_and_capabilities_together() {
    let daemonset = &documents("deploy/daemonset.yaml")[0];
    let configmap = &documents("deploy/configmap.yaml")[0];
    let pod = &daemonset["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    let container = &pod["containers"][0];
    let args = container["args"].as_array().unwrap();
    assert_eq!(args[0], "install");
    assert!(args.iter().any(|a| a == "--watch"));
    let mounts = container["volumeMounts"].as_array().unwrap();
    let volumes = pod["volumes"].as_array().unwrap();
    // mount path -> (mount, volume)
    let mount_of = |mount_path: &str| {
        let mount = mounts
            .iter()
            .find(|m| m["mountPath"] == mount_path)
            .unwrap_or_else(|| panic!("nothing mounted at {mount_path}"));
        let volume = volumes.iter().find(|v| v["name"] == mount["name"]).unwrap();
        (mount.clone(), volume.clone())
    };
    let host_path = |mount_path: &str| mount_of(mount_path).1["hostPath"]["path"].clone();
    assert_eq!(host_path(arg_after(args, "--bin-dir")), "/opt/cni/bin");
    assert_eq!(host_path(arg_after(args, "--conf-dir")), "/etc/cni/net.d");
    assert_eq!(
        host_path(arg_after(args, "--state-dir")),
        "/run/cni/macvlan-host"
    );
    // Sysctls go through the host's /proc/sys/net, mounted writable where the binary's
    // MACVLAN_HOST_SYSCTL_ROOT says (the runtime's own /proc/sys is read-only here).
    let sysctl_root = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "MACVLAN_HOST_SYSCTL_ROOT")
        .expect("MACVLAN_HOST_SYSCTL_ROOT in env")["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let sysctl_net = format!("{sysctl_root}/net");
    assert_eq!(host_path(&sysctl_net), "/proc/sys/net");
    assert_ne!(mount_of(&sysctl_net).0["readOnly"], true);
    let (netns, _) = mount_of("/run/netns");
    assert_eq!(netns["mountPropagation"], "HostToContainer");
    assert_eq!(host_path("/run/netns"), "/run/netns");

    // --conflist is a key of the ConfigMap, mounted where the argument says.
    let conflist = Path::new(arg_after(args, "--conflist"));
    let (_, volume) = mount_of(conflist.parent().unwrap().to_str().unwrap());
    assert_eq!(volume["configMap"]["name"], configmap["metadata"]["name"]);
    let key = conflist.file_name().unwrap().to_str().unwrap();
    assert!(
        configmap["data"][key].is_string(),
        "ConfigMap has no key {key}"
    );

    // The probes ask the watcher's listener (--metrics-address) on its declared port.
    let listen: std::net::SocketAddr = arg_after(args, "--metrics-address").parse().unwrap();
    assert!(
        listen.ip().is_unspecified(),
        "the kubelet probes the node's address (hostNetwork), not loopback"
    );
    let port = &container["ports"][0];
    assert_eq!(port["containerPort"], listen.port());
    for (probe, path) in [
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        assert_eq!(get["port"], port["name"], "{probe}");
        // Longer than /healthz may take to answer (1 s).
        assert!(
            container[probe]["timeoutSeconds"].as_u64().unwrap() >= 2,
            "{probe}"
        );
    }

    let security = &container["securityContext"];
    assert_eq!(security["privileged"], false);
    assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(
        security["capabilities"]["add"],
        serde_json::json!(["NET_ADMIN", "SYS_ADMIN"])
    );
}

#[test]
fn the_systemd_unit_verifies_and_runs_reconcile_watch() {
    let unit = verified_unit("macvlan-host-reconcile.service");
    assert!(unit.contains("\nExecStart=/opt/cni/bin/macvlan-host reconcile --watch\n"));
}

#[test]
fn the_docker_driver_unit_verifies_and_starts_before_dockerd() {
    let unit = verified_unit("macvlan-host-docker.service");
    assert!(unit.contains("\nExecStart=/usr/local/bin/macvlan-host docker-driver\n"));
    assert!(unit.contains("\nBefore=docker.service\n"));
    // Containers with a restart policy come back at boot only if the driver is there.
    assert!(unit.contains("\nWantedBy=multi-user.target docker.service\n"));
}

/// A unit of deploy/systemd/ that passes `systemd-analyze verify`; its text.
fn verified_unit(name: &str) -> String {
    let unit = std::fs::read_to_string(path(&format!("deploy/systemd/{name}"))).unwrap();
    let exec_start = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let words: Vec<&str> = exec_start.split_whitespace().collect();
    // systemd-analyze verify checks that the program exists: point it at the built binary.
    let dir = std::env::temp_dir().join(format!("mvh-{}-unit-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join(name);
    std::fs::write(
        &copy,
        unit.replace(words[0], env!("CARGO_BIN_EXE_macvlan-host")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("run systemd-analyze (Debian's systemd)");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify {name}: {}",
        text(&out)
    );
    unit
}

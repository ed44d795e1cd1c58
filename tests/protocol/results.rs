//! Results: `ips[].version` by spec version, parsing, raw route fields, pass-through of a
//! previous result, and the pod interface a result describes.

use macvlan_host::protocol::result::{pass_through, Interface, IpConfig, RouteEntry};
use macvlan_host::protocol::{code, CniOutput, CniVersion};
use serde_json::{json, Value};

/// A 1.1.0 result as a previous plugin could print it, with keys this plugin does not know at
/// every level.
fn rich_prev_result() -> Value {
    json!({
        "cniVersion": "1.1.0",
        "x-top-level": { "kept": [1, 2, 3] },
        "interfaces": [
            { "name": "eth0", "mac": "02:00:00:00:00:aa" },
            { "name": "net1", "mac": "02:00:00:00:00:01", "sandbox": "/run/netns/pod",
              "mtu": 1500, "socketPath": "/run/x.sock", "pciID": "0000:00:1f.6", "x-iface": null },
        ],
        "ips": [
            { "address": "10.0.0.5/24", "gateway": "10.0.0.1", "interface": 1, "x-ip": "kept" },
            { "address": "fd00::5/64", "interface": 1 },
        ],
        "routes": [
            { "dst": "0.0.0.0/0", "gw": "10.0.0.1", "mtu": 1400, "advmss": 1360,
              "priority": 100, "table": 200, "scope": 0, "x-route": { "a": "b" } },
            { "dst": "fd00:1::/64", "scope": 253 },
        ],
        "dns": { "nameservers": ["10.0.0.53"], "domain": "lan", "search": ["a.lan"], "options": ["ndots:2"] },
    })
}

fn sample_output() -> CniOutput {
    CniOutput {
        interfaces: vec![
            Interface {
                name: "net1".into(),
                mac: Some("02:00:00:00:00:01".into()),
                sandbox: Some("/run/netns/pod".into()),
            },
            Interface {
                name: "mvh-shim".into(),
                mac: None,
                sandbox: None,
            },
        ],
        ips: vec![
            IpConfig {
                address: "10.0.0.5/24".parse().unwrap(),
                gateway: Some("10.0.0.1".parse().unwrap()),
                interface: Some(0),
            },
            IpConfig {
                address: "fd00::5/64".parse().unwrap(),
                gateway: None,
                interface: Some(0),
            },
            IpConfig {
                address: "10.0.9.9/32".parse().unwrap(),
                gateway: None,
                interface: None,
            },
        ],
        routes: vec![RouteEntry {
            dst: "0.0.0.0/0".parse().unwrap(),
            gw: Some("10.0.0.1".parse().unwrap()),
            raw: json!({ "dst": "0.0.0.0/0", "gw": "10.0.0.1" })
                .as_object()
                .unwrap()
                .clone(),
        }],
        dns: Some(json!({ "nameservers": ["10.0.0.53"] })),
    }
}

#[test]
fn ips_carry_version_before_1_0_0_only() {
    let output = sample_output();
    let expected = [
        (CniVersion::V0_3_0, true),
        (CniVersion::V0_3_1, true),
        (CniVersion::V0_4_0, true),
        (CniVersion::V1_0_0, false),
        (CniVersion::V1_1_0, false),
    ];
    for (version, carries) in expected {
        let json = output.to_json(version);
        assert_eq!(json["cniVersion"], version.as_str());
        let ips = json["ips"].as_array().unwrap();
        assert_eq!(ips.len(), 3);
        for (ip, family) in ips.iter().zip(["4", "6", "4"]) {
            if carries {
                assert_eq!(ip["version"], family, "{version}: {ip}");
                assert_eq!(ip.as_object().unwrap().keys().next().unwrap(), "version");
            } else {
                assert!(ip.get("version").is_none(), "{version}: {ip}");
            }
        }
        assert_eq!(ips[0]["address"], "10.0.0.5/24");
        assert_eq!(ips[0]["gateway"], "10.0.0.1");
        assert_eq!(ips[0]["interface"], 0);
        assert!(ips[1].get("gateway").is_none());
        assert!(ips[2].get("interface").is_none());
        assert_eq!(
            json["interfaces"],
            json!([
                { "name": "net1", "mac": "02:00:00:00:00:01", "sandbox": "/run/netns/pod" },
                { "name": "mvh-shim" },
            ])
        );
        assert_eq!(json["dns"], json!({ "nameservers": ["10.0.0.53"] }));
        assert_eq!(
            CniOutput::parse(&json, "result").unwrap(),
            output,
            "{version}: round trip"
        );
    }
}

#[test]
fn parse_accepts_results_with_and_without_ips_version() {
    let old_shape = json!({
        "cniVersion": "0.3.1",
        "interfaces": [{ "name": "net1", "sandbox": "/run/netns/pod" }],
        "ips": [
            { "version": "4", "address": "10.0.0.5/24", "gateway": "10.0.0.1", "interface": 0 },
            { "version": "6", "address": "fd00::5/64" },
        ],
    });
    let mut new_shape = old_shape.clone();
    new_shape["cniVersion"] = json!("1.0.0");
    for ip in new_shape["ips"].as_array_mut().unwrap() {
        ip.as_object_mut().unwrap().remove("version");
    }
    let old = CniOutput::parse(&old_shape, "prevResult").unwrap();
    let new = CniOutput::parse(&new_shape, "prevResult").unwrap();
    assert_eq!(old, new);
    assert_eq!(old.ips[0].address.to_string(), "10.0.0.5/24");
    assert_eq!(old.ips[0].gateway, Some("10.0.0.1".parse().unwrap()));
    assert_eq!(old.ips[0].interface, Some(0));
    assert_eq!(old.ips[1].interface, None);
    assert_eq!(old.dns, None);

    // Empty and missing lists are the same; empty strings count as absent.
    let sparse = CniOutput::parse(
        &json!({ "cniVersion": "0.3.0", "interfaces": [], "ips": null, "dns": {},
                 "routes": [{ "dst": "0.0.0.0/0", "gw": "" }] }),
        "r",
    )
    .unwrap();
    assert!(sparse.interfaces.is_empty() && sparse.ips.is_empty());
    assert_eq!(sparse.routes[0].gw, None);
    assert_eq!(sparse.dns, None);
}

#[test]
fn parse_refuses_malformed_results_naming_the_field() {
    let cases = [
        (json!({ "interfaces": {} }), vec!["interfaces", "list"]),
        (json!({ "ips": "10.0.0.5/24" }), vec!["ips", "10.0.0.5/24"]),
        (json!({ "routes": {} }), vec!["routes", "list"]),
        (
            json!({ "interfaces": [{ "mac": "02:00:00:00:00:01" }] }),
            vec!["interfaces", "name", "02:00:00:00:00:01"],
        ),
        (
            json!({ "ips": [{ "gateway": "10.0.0.1" }] }),
            vec!["ips[].address", "missing"],
        ),
        (
            json!({ "ips": [{ "address": "10.0.0.500/24" }] }),
            vec!["ips[].address", "10.0.0.500/24"],
        ),
        (
            json!({ "ips": [{ "address": "10.0.0.5/24", "gateway": "gw" }] }),
            vec!["ips[].gateway", "\"gw\""],
        ),
        (
            json!({ "ips": [{ "address": "10.0.0.5/24", "interface": -1 }] }),
            vec!["ips[].interface", "-1"],
        ),
        (
            json!({ "ips": [{ "address": "10.0.0.5/24", "interface": "0" }] }),
            vec!["ips[].interface", "\"0\""],
        ),
        (
            json!({ "routes": ["0.0.0.0/0"] }),
            vec!["routes", "0.0.0.0/0"],
        ),
        (
            json!({ "routes": [{ "gw": "10.0.0.1" }] }),
            vec!["routes[].dst", "missing"],
        ),
        (
            json!({ "routes": [{ "dst": "default" }] }),
            vec!["routes[].dst", "default"],
        ),
        (
            json!({ "routes": [{ "dst": "0.0.0.0/0", "gw": "10.0.0.1/24" }] }),
            vec!["routes[].gw", "10.0.0.1/24"],
        ),
    ];
    for (result, needles) in cases {
        let err = CniOutput::parse(&result, "the IPAM result").expect_err(&result.to_string());
        assert_eq!(
            err.cni_code(),
            code::INVALID_CONFIG,
            "{result}: {}",
            err.msg
        );
        assert!(err.msg.starts_with("the IPAM result"), "{}", err.msg);
        for needle in needles {
            assert!(
                err.msg.contains(needle),
                "{result}: {needle:?} not in {:?}",
                err.msg
            );
        }
    }
}

#[test]
fn routes_keep_every_raw_field_through_parse_and_to_json() {
    let prev = rich_prev_result();
    let output = CniOutput::parse(&prev, "prevResult").unwrap();
    assert_eq!(output.routes[0].dst.to_string(), "0.0.0.0/0");
    assert_eq!(output.routes[0].gw, Some("10.0.0.1".parse().unwrap()));
    assert_eq!(output.routes[1].gw, None);
    for version in CniVersion::ALL {
        let json = output.to_json(version);
        assert_eq!(json["routes"], prev["routes"], "{version}");
        assert_eq!(
            serde_json::to_string(&json["routes"]).unwrap(),
            serde_json::to_string(&prev["routes"]).unwrap(),
            "{version}: same bytes, same key order"
        );
        assert_eq!(json["dns"], prev["dns"], "{version}");
    }
}

#[test]
fn pass_through_changes_only_the_version_and_appends_extra_interfaces() {
    let prev = rich_prev_result();
    let extra = [
        Interface {
            name: "mvh-shim0".into(),
            mac: Some("02:00:00:00:00:ff".into()),
            sandbox: None,
        },
        Interface {
            name: "mvhv1234".into(),
            mac: None,
            sandbox: None,
        },
    ];
    let bytes = |v: &Value| serde_json::to_string(v).unwrap();
    for version in CniVersion::ALL {
        for extra in [&extra[..], &[]] {
            let out = pass_through(&prev, version, extra);
            let label = format!("{version} with {} extra", extra.len());
            assert_eq!(out["cniVersion"], version.as_str(), "{label}");

            let out_keys: Vec<&String> = out.as_object().unwrap().keys().collect();
            let prev_keys: Vec<&String> = prev.as_object().unwrap().keys().collect();
            assert_eq!(
                out_keys, prev_keys,
                "{label}: no key added, removed or moved"
            );
            for key in prev_keys {
                if key != "cniVersion" && key != "interfaces" {
                    assert_eq!(bytes(&out[key]), bytes(&prev[key]), "{label}: {key}");
                }
            }

            let prev_interfaces = prev["interfaces"].as_array().unwrap();
            let out_interfaces = out["interfaces"].as_array().unwrap();
            assert_eq!(
                out_interfaces.len(),
                prev_interfaces.len() + extra.len(),
                "{label}"
            );
            for (out, prev) in out_interfaces.iter().zip(prev_interfaces) {
                assert_eq!(bytes(out), bytes(prev), "{label}");
            }
            let appended = &out_interfaces[prev_interfaces.len()..];
            let expected: Vec<Value> = extra
                .iter()
                .map(|i| match &i.mac {
                    Some(mac) => json!({ "name": i.name, "mac": mac }),
                    None => json!({ "name": i.name }),
                })
                .collect();
            assert_eq!(appended, &expected[..], "{label}");

            let mut expected_whole = prev.clone();
            expected_whole["cniVersion"] = json!(version.as_str());
            expected_whole["interfaces"]
                .as_array_mut()
                .unwrap()
                .extend(expected);
            assert_eq!(out, expected_whole, "{label}");
        }
    }
}

#[test]
fn pass_through_of_a_result_without_interfaces() {
    let prev = json!({ "cniVersion": "0.3.1", "ips": [{ "version": "4", "address": "10.0.0.5/24" }], "dns": {} });
    let out = pass_through(&prev, CniVersion::V0_3_1, &[]);
    assert_eq!(
        out, prev,
        "nothing to append: no interfaces key is invented"
    );
    let shim = Interface {
        name: "mvh-shim0".into(),
        mac: None,
        sandbox: None,
    };
    let out = pass_through(&prev, CniVersion::V1_0_0, &[shim]);
    assert_eq!(out["interfaces"], json!([{ "name": "mvh-shim0" }]));
    assert_eq!(
        out["ips"], prev["ips"],
        "ips keep their version key: they are passed, not rebuilt"
    );
    assert_eq!(out["cniVersion"], "1.0.0");
}

/// A result whose interfaces are `(name, in a sandbox)` and whose ips are
/// `(address, interface index)`.
fn result_of(interfaces: &[(&str, bool)], ips: &[(&str, Option<usize>)]) -> CniOutput {
    CniOutput {
        interfaces: interfaces
            .iter()
            .map(|(name, sandboxed)| Interface {
                name: (*name).into(),
                mac: Some(format!("02:00:00:00:00:{:02x}", name.len())),
                sandbox: sandboxed.then(|| format!("/run/netns/{name}")),
            })
            .collect(),
        ips: ips
            .iter()
            .map(|(address, interface)| IpConfig {
                address: address.parse().unwrap(),
                gateway: None,
                interface: *interface,
            })
            .collect(),
        ..CniOutput::default()
    }
}

#[test]
fn pod_interface_picks_the_sandboxed_interface_and_its_addresses() {
    // (interfaces, ips, ifname, expected index, expected addresses)
    #[allow(clippy::type_complexity)]
    let cases: &[(
        &[(&str, bool)],
        &[(&str, Option<usize>)],
        &str,
        usize,
        &[&str],
    )] = &[
        // The reference macvlan in a chain: one pod interface, addresses pointing at it.
        (
            &[("net1", true)],
            &[("10.0.0.5/24", Some(0)), ("fd00::5/64", Some(0))],
            "net1",
            0,
            &["10.0.0.5/24", "fd00::5/64"],
        ),
        // A host-side interface first: the index counts every interface.
        (
            &[("eth0", false), ("net1", true)],
            &[("10.0.0.5/24", Some(1)), ("192.168.1.2/24", Some(0))],
            "net1",
            1,
            &["10.0.0.5/24"],
        ),
        // A host-side interface of the same name is not the pod's.
        (
            &[("net1", false), ("net1", true)],
            &[("10.0.0.9/24", Some(0)), ("10.0.0.5/24", Some(1))],
            "net1",
            1,
            &["10.0.0.5/24"],
        ),
        // Two pod interfaces: only the addresses of the one asked for.
        (
            &[("net1", true), ("net2", true)],
            &[
                ("10.0.0.5/24", Some(0)),
                ("10.0.1.5/24", Some(1)),
                ("10.0.2.5/24", None),
            ],
            "net2",
            1,
            &["10.0.1.5/24"],
        ),
        // 0.3.0 results may omit the index: fine when there is one pod interface.
        (
            &[("net1", true)],
            &[("10.0.0.5/24", None), ("fd00::5/64", None)],
            "net1",
            0,
            &["10.0.0.5/24", "fd00::5/64"],
        ),
        (
            &[("eth0", false), ("net1", true)],
            &[("10.0.0.5/24", None)],
            "net1",
            1,
            &["10.0.0.5/24"],
        ),
    ];
    for (interfaces, ips, ifname, index, addresses) in cases {
        let result = result_of(interfaces, ips);
        let pod = result
            .pod_interface(ifname, "prevResult")
            .unwrap_or_else(|e| panic!("{interfaces:?} {ips:?}: {e}"));
        assert_eq!(pod.index, *index, "{interfaces:?}");
        assert_eq!(pod.name, *ifname);
        assert_eq!(pod.sandbox, format!("/run/netns/{ifname}"));
        assert_eq!(pod.mac, result.interfaces[*index].mac);
        let got: Vec<String> = pod.addresses.iter().map(ToString::to_string).collect();
        assert_eq!(got, *addresses, "{interfaces:?} {ips:?}");
    }
}

#[test]
fn pod_interface_errors_name_the_interface() {
    #[allow(clippy::type_complexity)]
    let cases: &[(&[(&str, bool)], &[(&str, Option<usize>)], &str)] = &[
        // Absent.
        (&[], &[("10.0.0.5/24", None)], "no interface named"),
        (
            &[("eth0", true)],
            &[("10.0.0.5/24", Some(0))],
            "no interface named",
        ),
        // Present only on the host side.
        (
            &[("net1", false)],
            &[("10.0.0.5/24", Some(0))],
            "no interface named",
        ),
        // Present, without addresses.
        (&[("net1", true)], &[], "no address"),
        (
            &[("eth0", true), ("net1", true)],
            &[("10.0.0.5/24", Some(0))],
            "no address",
        ),
        // Addresses without an index are ambiguous with two pod interfaces.
        (
            &[("eth0", true), ("net1", true)],
            &[("10.0.0.5/24", None)],
            "no address",
        ),
    ];
    for (interfaces, ips, why) in cases {
        let err = result_of(interfaces, ips)
            .pod_interface("net1", "prevResult")
            .unwrap_err();
        assert_eq!(err.cni_code(), code::INVALID_CONFIG, "{interfaces:?}");
        for needle in ["prevResult", "\"net1\"", why] {
            assert!(
                err.msg.contains(needle),
                "{interfaces:?} {ips:?}: {needle} not in {}",
                err.msg
            );
        }
    }
}

//! `macvlan-host diagnose [--state-dir DIR]... [--json]`: what an operator needs to know about
//! host access on this node, changing nothing.

use std::collections::BTreeMap;
use std::process::ExitCode;

use serde::Serialize;

use super::args::{self, Accepts};
use super::attachment::{self, Diagnosis};
use super::host_managers::{self, HostManager};
use super::pass::keys_in;
use super::sysctls::{self, InterfaceSysctls};
use super::{could_not_run, Exit};
use crate::datapaths::node::Node;
use crate::system::logger;
use crate::system::state::StateStore;

const HELP: &str = "\
Usage: macvlan-host diagnose [--state-dir DIR]... [--json]

Tells what is wrong with host access on this node, changing nothing: the masters and their
shims (MAC, hardening sysctls), every attachment recorded in the state directories (default
/run/cni/macvlan-host) with \"ok\" or exactly what drifted, the node's sysctls that matter
(effective rp_filter, arp_ignore, arp_announce per interface) and the host network managers
found, with the setting that keeps them away from mvh* links. Run it in the node's network
namespace; `macvlan-host reconcile` repairs what it reports.

  --state-dir DIR   a state directory (repeat for several; the networks' \"stateDir\")
  --json            one JSON document on stdout, for scripts

Exit status: 0 healthy, 1 drift, 2 could not run.
";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    healthy: bool,
    masters: Vec<MasterReport>,
    attachments: Vec<AttachmentReport>,
    host_managers: Vec<HostManager>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MasterReport {
    name: String,
    exists: bool,
    up: bool,
    sysctls: InterfaceSysctls,
    shims: Vec<ShimReport>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ShimReport {
    name: String,
    exists: bool,
    up: bool,
    mac: Option<String>,
    expected_mac: String,
    sysctls: InterfaceSysctls,
    /// Empty when the shim is as it must be.
    drift: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AttachmentReport {
    attachment: String,
    state_dir: String,
    pod: String,
    addresses: Vec<String>,
    datapath: String,
    /// "ok", "drift" or "unreachable" (the pod's namespace could not be opened).
    status: &'static str,
    drift: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unreachable: Option<String>,
}

pub fn main(args: &[String]) -> ExitCode {
    let accepts = Accepts {
        watch: false,
        json: true,
    };
    let options = match args::parse_or_exit("diagnose", args, accepts, HELP) {
        Ok(options) => options,
        Err(exit) => return exit,
    };
    logger::init("diagnose".into());
    let diagnosis = match collect(&options.state_dirs) {
        Ok(d) => d,
        Err(e) => return could_not_run("diagnose", e),
    };
    if options.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&diagnosis).expect("a diagnosis serialises")
        );
    } else {
        print!("{}", render(&diagnosis));
    }
    if diagnosis.healthy {
        Exit::Clean.into()
    } else {
        Exit::Drift.into()
    }
}

fn collect(dirs: &[std::path::PathBuf]) -> Result<Report, String> {
    let node = Node::open().map_err(|e| e.to_string())?;
    let mut attachments = Vec::new();
    // master -> shim name -> (expected MAC, what is wrong with it)
    let mut masters: BTreeMap<String, BTreeMap<String, (String, Vec<String>)>> = BTreeMap::new();
    for dir in dirs {
        let keys = keys_in(dir)?;
        if keys.is_empty() {
            continue;
        }
        let store =
            StateStore::open(dir).map_err(|e| format!("state directory {}: {e}", dir.display()))?;
        for key in keys {
            let Ok(Some(record)) = store.load(&key) else {
                continue;
            };
            let shims = masters.entry(record.master.clone()).or_default();
            let datapath = record.path.to_string();
            let (status, drift, unreachable) = match attachment::diagnose(&node, &store, &key) {
                Diagnosis::Gone => continue,
                Diagnosis::Drift(drift) if drift.is_empty() => ("ok", Vec::new(), None),
                Diagnosis::Drift(drift) => ("drift", drift, None),
                Diagnosis::Unreachable(reason) => ("unreachable", Vec::new(), Some(reason)),
                Diagnosis::Failed(reason) => ("drift", Vec::new(), Some(reason)),
            };
            if let Some(name) = record.path.shared_shim() {
                let shim = shims
                    .entry(name.to_owned())
                    .or_insert_with(|| (record.host_mac.to_string(), Vec::new()));
                // What is wrong with the shim itself shows once, under the shim.
                for d in drift.iter().filter(|d| d.object.shim() == Some(name)) {
                    let line = d.to_string();
                    if !shim.1.contains(&line) {
                        shim.1.push(line);
                    }
                }
            }
            let mut lines: Vec<String> = drift.iter().map(ToString::to_string).collect();
            if status == "drift" {
                lines.extend(unreachable.clone());
            }
            attachments.push(AttachmentReport {
                attachment: key.file_stem(),
                state_dir: dir.display().to_string(),
                pod: record.netns.clone(),
                addresses: record.pod_addresses.iter().map(|a| a.to_string()).collect(),
                datapath,
                status,
                drift: lines,
                unreachable: unreachable.filter(|_| status == "unreachable"),
            });
        }
    }
    let masters: Vec<MasterReport> = masters
        .into_iter()
        .map(|(name, shims)| master_report(&node, name, shims))
        .collect();
    let healthy = attachments.iter().all(|a| a.status != "drift")
        && masters
            .iter()
            .all(|m| m.exists && m.shims.iter().all(|s| s.drift.is_empty()));
    Ok(Report {
        healthy,
        masters,
        attachments,
        host_managers: host_managers::detect("/".as_ref()),
    })
}

fn master_report(
    node: &Node,
    name: String,
    shims: BTreeMap<String, (String, Vec<String>)>,
) -> MasterReport {
    let link = node.netlink.link_by_name(&name).ok().flatten();
    MasterReport {
        exists: link.is_some(),
        up: link.as_ref().is_some_and(|l| l.up),
        sysctls: sysctls::effective(&name),
        shims: shims
            .into_iter()
            .map(|(shim_name, (mac, drift))| shim_report(node, shim_name, mac, drift))
            .collect(),
        name,
    }
}

fn shim_report(node: &Node, name: String, expected_mac: String, drift: Vec<String>) -> ShimReport {
    let link = node.netlink.link_by_name(&name).ok().flatten();
    ShimReport {
        exists: link.is_some(),
        up: link.as_ref().is_some_and(|l| l.up),
        mac: link.and_then(|l| l.mac).map(|m| m.to_string()),
        expected_mac,
        drift,
        sysctls: sysctls::effective(&name),
        name,
    }
}

/// The human form: a verdict first, then one line per object, drift indented below it.
fn render(d: &Report) -> String {
    let mut out = String::new();
    let drifted = d.attachments.iter().filter(|a| a.status == "drift").count();
    let verdict = if d.healthy {
        "healthy".to_owned()
    } else {
        format!("DRIFT ({drifted} attachment(s) drifted; `macvlan-host reconcile` repairs it)")
    };
    out += &format!("host access: {verdict}\n\nmasters\n");
    if d.masters.is_empty() {
        out += "  (no attachment recorded)\n";
    }
    for m in &d.masters {
        let state = match (m.exists, m.up) {
            (false, _) => "MISSING",
            (true, false) => "down",
            (true, true) => "up",
        };
        out += &format!("  {:<16} {state:<8} {}\n", m.name, effective(&m.sysctls));
        for s in &m.shims {
            let status = if s.drift.is_empty() { "ok" } else { "DRIFT" };
            out += &format!(
                "    shim {:<14} {status:<6} MAC {}  {}\n",
                s.name,
                s.mac.as_deref().unwrap_or("-"),
                effective(&s.sysctls)
            );
            for line in &s.drift {
                out += &format!("      - {line}\n");
            }
        }
    }
    out += "\nattachments\n";
    if d.attachments.is_empty() {
        out += "  (none)\n";
    }
    for a in &d.attachments {
        let status = match a.status {
            "ok" => "ok",
            "drift" => "DRIFT",
            _ => "UNREACHABLE",
        };
        out += &format!(
            "  {status:<11} {}  {}  {}  pod {}\n",
            a.attachment,
            a.addresses.join(","),
            a.datapath,
            a.pod
        );
        for line in &a.drift {
            out += &format!("      - {line}\n");
        }
        if let Some(reason) = &a.unreachable {
            out += &format!("      - left alone: {reason}\n");
        }
    }
    out += "\nhost network managers\n";
    if d.host_managers.is_empty() {
        out += "  (none found)\n";
    }
    for h in &d.host_managers {
        let status = if h.leaves_us_alone { "ok" } else { "RISK" };
        out += &format!(
            "  {status:<6} {}{}  {}\n",
            h.name,
            if h.running {
                " (running)"
            } else {
                " (not running)"
            },
            h.setting
        );
        if let Some(advice) = &h.advice {
            out += &format!("      - {advice}\n");
        }
    }
    out
}

fn effective(s: &InterfaceSysctls) -> String {
    let show = |v: Option<u8>| v.map(|v| v.to_string()).unwrap_or_else(|| "?".into());
    format!(
        "rp_filter={} arp_ignore={} arp_announce={} (effective)",
        show(s.rp_filter),
        show(s.arp_ignore),
        show(s.arp_announce)
    )
}

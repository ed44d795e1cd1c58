//! The `macvlan-host` binary: environment + stdin in, one JSON document (result or error) out.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

use macvlan_host::error::{catch_panics, Error};
use macvlan_host::protocol::version::declared_version;
use macvlan_host::protocol::{CniVersion, Environment};
use macvlan_host::system::{logger, sysctl};
use macvlan_host::{commands, netavark, plugin};

fn usage() -> String {
    format!(
        "macvlan-host {}: a CNI plugin that attaches pods with macvlan and lets the node reach them.\n\
         It is run by a container runtime, with CNI_COMMAND (ADD, DEL, CHECK, VERSION, GC, STATUS)\n\
         and the other CNI_* variables set and the network configuration on stdin.\n\
         CNI versions supported: {}\n\n\
         Operator commands (run on the node, without CNI_COMMAND; --help for each):\n\
         \x20 macvlan-host install --bin-dir DIR --conf-dir DIR --conflist FILE [--watch]\n\
         \x20                                                         install the plugin and a conflist\n\
         \x20 macvlan-host reconcile [--state-dir DIR]... [--watch]   repair the host side of every pod\n\
         \x20 macvlan-host diagnose [--state-dir DIR]... [--json]     tell what is wrong, change nothing\n\
         \x20 macvlan-host docker-driver [--socket PATH] [--state-dir DIR]   Docker's network driver\n\n\
         As a netavark plugin (podman 5 and later; in one of netavark_plugin_dirs), netavark runs\n\
         \x20 macvlan-host create | setup NETNS | teardown NETNS | info   with JSON on stdin and stdout\n\n\
         Environment: {}=DIR, where sysctls are read and written (default /proc/sys;\n\
         a container whose /proc/sys is read-only mounts the host's /proc/sys/net below DIR)\n",
        env!("CARGO_PKG_VERSION"),
        CniVersion::ALL.map(CniVersion::as_str).join(", "),
        sysctl::ROOT_VARIABLE
    )
}

/// What every log line of this call starts with: verb, container ID, interface.
fn call_tag() -> String {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    format!(
        "{} {} {}",
        var("CNI_COMMAND"),
        var("CNI_CONTAINERID"),
        var("CNI_IFNAME")
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Without CNI_COMMAND (a CNI runtime always sets it), the first argument selects: a verb
    // of netavark's plugin API (podman 5 and later), or an operator's command.
    if std::env::var_os("CNI_COMMAND").is_none() {
        if let Some((first, rest)) = args.split_first() {
            if netavark::is_verb(first) {
                return netavark::main(first, rest);
            }
            if let Some(exit) = commands::run(first, rest) {
                return exit;
            }
        }
    }
    let asked_for_help = args
        .iter()
        .any(|a| a == "--help" || a == "-h" || a == "--version");
    let run_by_a_person =
        std::env::var_os("CNI_COMMAND").is_none() && std::io::stdin().is_terminal();
    if asked_for_help || run_by_a_person {
        print!("{}", usage());
        return ExitCode::SUCCESS;
    }

    logger::init(call_tag());
    let mut stdin = Vec::new();
    let mut version = CniVersion::LATEST.as_str().to_owned();
    let outcome = catch_panics(|| {
        std::io::stdin()
            .read_to_end(&mut stdin)
            .map_err(|e| Error::io(format!("reading stdin: {e}")))?;
        if let Some(v) = declared_version(&stdin) {
            version = v;
        }
        let env = Environment::from_process()?;
        plugin::run(&env, &stdin, |conf| {
            if let Some(path) = &conf.log_file {
                logger::log_to_file(path, conf.log_level);
            }
        })
    });

    let mut stdout = std::io::stdout().lock();
    match outcome {
        Ok(Some(result)) => {
            let _ = writeln!(stdout, "{result}");
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(err) => {
            log::warn!("{err}");
            let _ = writeln!(stdout, "{}", err.to_json(&version));
            ExitCode::FAILURE
        }
    }
}

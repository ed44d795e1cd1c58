//! The driver under test, run inside NODE1 like dockerd would find it, and a client that
//! speaks to it as dockerd does (POST + JSON over its unix socket), doing what dockerd does
//! between the calls: moving the link into the container's namespace, naming and configuring
//! it, and back.

use crate::common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// `macvlan-host docker-driver` in NODE1, with its socket and directories in a temporary
/// directory. Killed by PID on drop.
pub struct Driver {
    pub dir: TempDir,
    child: Option<Child>,
    node: String,
}

impl Driver {
    pub fn start(lan: &Lan) -> Driver {
        let mut driver = Driver {
            dir: TempDir::new("docker-driver"),
            child: None,
            node: lan.node1.path(),
        };
        driver.restart();
        driver
    }

    pub fn socket(&self) -> std::path::PathBuf {
        self.dir.join("plugins/macvlan-host.sock")
    }

    pub fn state_dir(&self) -> std::path::PathBuf {
        self.dir.join("state")
    }

    pub fn network_dir(&self) -> std::path::PathBuf {
        self.dir.join("networks")
    }

    /// Starts it (again); returns once it answers.
    pub fn restart(&mut self) {
        self.kill();
        let child = std::process::Command::new("nsenter")
            .arg(format!("--net={}", self.node))
            .arg(OUR_PLUGIN)
            .arg("docker-driver")
            .arg("--socket")
            .arg(self.socket())
            .arg("--state-dir")
            .arg(self.state_dir())
            .arg("--network-dir")
            .arg(self.network_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the driver");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(self.socket()).is_err() {
            assert!(Instant::now() < deadline, "the driver never listened");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops (SIGSTOP) or continues (SIGCONT) the driver's process.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = self.child.as_ref().expect("running").id();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).expect("signal");
    }

    /// One call on a fresh connection: the HTTP status and the JSON reply.
    pub fn post(&self, method: &str, body: &Value) -> (u16, Value) {
        let mut stream = UnixStream::connect(self.socket()).expect("connect to the driver");
        let payload = body.to_string();
        write!(
            stream,
            "POST /{method} HTTP/1.1\r\nHost: plugin.moby.localhost\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: {}\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\nConnection: close\r\n\r\n{payload}",
            payload.len()
        )
        .unwrap();
        read_reply(&mut stream)
    }

    /// A call that must succeed: its reply.
    pub fn call(&self, method: &str, body: &Value) -> Value {
        let (status, reply) = self.post(method, body);
        assert_eq!(status, 200, "{method}: {reply}");
        assert!(reply.get("Err").is_none(), "{method}: {reply}");
        reply
    }

    /// CreateNetwork, which must succeed (`create_network`'s body); the network's ID.
    pub fn network(&self, v4: bool, v6: bool, options: Value) -> String {
        let (id, body) = create_network(v4, v6, options);
        self.call("NetworkDriver.CreateNetwork", &body);
        id
    }

    /// A call that must be refused: its `Err`.
    pub fn refused(&self, method: &str, body: &Value) -> String {
        let (status, reply) = self.post(method, body);
        assert_eq!(status, 200, "{method}: {reply}");
        reply["Err"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} should fail: {reply}"))
            .to_owned()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads one HTTP reply (the driver closes the connection after it).
pub fn read_reply(stream: &mut UnixStream) -> (u16, Value) {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the reply");
    let text = String::from_utf8(raw).expect("UTF-8 reply");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let body = serde_json::from_str(body).unwrap_or(Value::Null);
    (status, body)
}

/// A 64-hex-digit ID, as Docker's.
pub fn docker_id(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{:0<64}", format!("{tag}{:x}{n:04x}", std::process::id()))
}

/// A network as `docker network create -d macvlan-host -o ... --subnet ...` asks for it.
pub fn create_network(v4: bool, v6: bool, options: Value) -> (String, Value) {
    let id = docker_id("a");
    let mut ipv4 = vec![];
    let mut ipv6 = vec![];
    if v4 {
        ipv4.push(json!({"AddressSpace": "LocalDefault", "Pool": SUBNET4, "Gateway": format!("{PEER_IP4}/24")}));
    }
    if v6 {
        ipv6.push(json!({"AddressSpace": "LocalDefault", "Pool": SUBNET6, "Gateway": format!("{PEER_IP6}/64")}));
    }
    let body = json!({
        "NetworkID": id,
        "Options": {"com.docker.network.enable_ipv6": v6, "com.docker.network.generic": options},
        "IPv4Data": ipv4,
        "IPv6Data": ipv6,
    });
    (id, body)
}

/// A container as dockerd sees it: its endpoint, its addresses, its sandbox.
pub struct Container {
    pub network: String,
    pub endpoint: String,
    pub ip4: Option<String>,
    pub ip6: Option<String>,
    pub mac: String,
    /// Shared by the endpoints of one container.
    pub sandbox: Rc<Netns>,
    /// The link's name on the node (Join's SrcName).
    pub src: String,
    /// Its name inside (`eth0`...).
    pub inside: String,
}

impl Container {
    pub fn ips(&self) -> Vec<String> {
        self.ip4.iter().chain(&self.ip6).cloned().collect()
    }

    pub fn endpoint_ref(&self) -> Value {
        json!({"NetworkID": self.network, "EndpointID": self.endpoint})
    }
}

/// A namespace name that `Lan`'s sweep of stale leftovers recognises as this process's.
pub fn sandbox_name() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "mvh-{}-sbx{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// CreateEndpoint with Docker's IPAM addresses (and `--mac-address` when given).
pub fn create_endpoint(
    driver: &Driver,
    network: &str,
    host: u8,
    v4: bool,
    v6: bool,
    mac: Option<&str>,
) -> (String, Option<String>, Option<String>, String) {
    let endpoint = docker_id("e");
    let ip4 = v4.then(|| format!("10.99.0.{host}"));
    let ip6 = v6.then(|| format!("fd99::{host:x}"));
    let reply = driver.call(
        "NetworkDriver.CreateEndpoint",
        &json!({
            "NetworkID": network,
            "EndpointID": endpoint,
            "Interface": {
                "Address": ip4.as_ref().map(|a| format!("{a}/24")).unwrap_or_default(),
                "AddressIPv6": ip6.as_ref().map(|a| format!("{a}/64")).unwrap_or_default(),
                "MacAddress": mac.unwrap_or(""),
            },
            "Options": {"com.docker.network.endpoint.exposedports": [], "com.docker.network.portmap": []},
        }),
    );
    let mac = match mac {
        // Docker's own MAC is never given back.
        Some(mac) => {
            assert!(reply.get("Interface").is_none(), "{reply}");
            mac.to_owned()
        }
        None => reply["Interface"]["MacAddress"]
            .as_str()
            .unwrap_or_else(|| panic!("CreateEndpoint must choose a MAC: {reply}"))
            .to_owned(),
    };
    (endpoint, ip4, ip6, mac)
}

/// Join; returns the link's name on the node, which must be there with the endpoint's MAC.
pub fn join(
    driver: &Driver,
    lan: &Lan,
    network: &str,
    endpoint: &str,
    sandbox: &str,
    mac: &str,
) -> String {
    let reply = driver.call(
        "NetworkDriver.Join",
        &json!({"NetworkID": network, "EndpointID": endpoint, "SandboxKey": sandbox, "Options": {}}),
    );
    assert_eq!(reply["InterfaceName"]["DstPrefix"], "eth", "{reply}");
    // The network's gateways (the LAN's router) become the container's.
    assert!(
        reply["Gateway"] == PEER_IP4 || reply["GatewayIPv6"] == PEER_IP6,
        "{reply}"
    );
    let src = reply["InterfaceName"]["SrcName"]
        .as_str()
        .expect("SrcName")
        .to_owned();
    assert!(
        lan.node1.has_link(&src),
        "Join's SrcName {src} must exist on the node"
    );
    assert_eq!(lan.node1.mac(&src), mac);
    src
}

/// What dockerd does after Join (26: from the prestart hook; 28: right away): moves the link
/// into the sandbox, names it `inside`, gives it its addresses and brings it up.
pub fn move_in(lan: &Lan, c: &Container) {
    lan.node1
        .ip(["link", "set", &c.src, "netns", c.sandbox.name()]);
    let sb = &c.sandbox;
    sb.ip(["link", "set", &c.src, "name", &c.inside]);
    if let Some(ip4) = &c.ip4 {
        sb.ip(["addr", "add", &format!("{ip4}/24"), "dev", &c.inside]);
    }
    if let Some(ip6) = &c.ip6 {
        sb.ip([
            "addr",
            "add",
            &format!("{ip6}/64"),
            "dev",
            &c.inside,
            "nodad",
        ]);
    }
    sb.ip(["link", "set", &c.inside, "up"]);
}

/// What dockerd does before DeleteEndpoint: the link back into the node under its SrcName.
pub fn move_out(lan: &Lan, c: &Container) {
    let sb = &c.sandbox;
    sb.ip(["link", "set", &c.inside, "down"]);
    sb.ip(["link", "set", &c.inside, "name", &c.src]);
    let node = lan.node1.path();
    let node_name = node.rsplit('/').next().unwrap();
    sb.ip(["link", "set", &c.src, "netns", node_name]);
}

/// Waits (bounded) until the container's permanent neighbour entry for the node exists: the
/// container's side is made.
pub fn wait_for_container_side(c: &Container) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !container_side_made(c) {
        assert!(
            Instant::now() < deadline,
            "the container's side was never made"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// The container has a permanent neighbour entry for each of the node's addresses it uses.
pub fn container_side_made(c: &Container) -> bool {
    let neighbours = permanent_neighbours(&c.sandbox);
    let wanted: Vec<&str> = [
        c.ip4.as_ref().map(|_| NODE1_IP4),
        c.ip6.as_ref().map(|_| NODE1_IP6),
    ]
    .into_iter()
    .flatten()
    .collect();
    wanted
        .iter()
        .all(|ip| neighbours.iter().any(|n| n["dst"] == *ip))
}

/// Files under a directory, temporaries included.
pub fn files(dir: &std::path::Path) -> Vec<String> {
    files_under(dir)
}

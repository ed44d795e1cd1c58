//! A small CRI client for the tests: `cri-driver SOCKET VERB`, the request as JSON on stdin,
//! the answer as JSON on stdout; a failed call exits 1 with the gRPC status on stderr.
//!
//! It calls containerd's CRI RuntimeService (v1) the way kubelet does. Verbs and their input:
//! - `status` `{}`: runtime and network readiness (with the NetworkReady condition's reason and
//!   message), and the verbose info (containerd puts the CNI configuration it loaded there).
//! - `run-pod` `Pod`: RunPodSandbox; prints `{"podId"}`.
//! - `pod-status` `{"podId"}`: PodSandboxStatus (verbose): state, IP, verbose info.
//! - `create-container` `{"podId", "pod": Pod, "name", "image", "command": [...]}`;
//!   prints `{"containerId"}`.
//! - `start-container` / `stop-container` `{"containerId"}`.
//! - `exec` `{"containerId", "cmd": [...], "timeoutSeconds"}`: ExecSync; prints
//!   `{"exitCode", "stdout", "stderr"}`.
//! - `stop-pod` / `remove-pod` `{"podId"}`.
//! - `list-pods` `{}`: every sandbox containerd still knows, `[{"id", "name", "state"}]`.

use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::io::Read;
use tonic::transport::{Channel, Endpoint, Uri};

/// What the test says about a pod; the driver turns it into the PodSandboxConfig kubelet
/// would send (the same config for RunPodSandbox and for each CreateContainer).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pod {
    name: String,
    namespace: String,
    uid: String,
    /// Per-run cgroup parent, as kubelet gives one: runc creates the pod's cgroups below it.
    cgroup_parent: String,
    log_directory: String,
}

impl Pod {
    fn sandbox_config(&self) -> cri::PodSandboxConfig {
        cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: self.name.clone(),
                uid: self.uid.clone(),
                namespace: self.namespace.clone(),
                attempt: 0,
            }),
            hostname: self.name.clone(),
            log_directory: self.log_directory.clone(),
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: self.cgroup_parent.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodRef {
    pod_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerRef {
    container_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewContainer {
    pod_id: String,
    pod: Pod,
    name: String,
    image: String,
    command: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Exec {
    container_id: String,
    cmd: Vec<String>,
    timeout_seconds: i64,
}

type Client = RuntimeServiceClient<Channel>;
type Outcome = Result<Value, String>;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, socket, verb] = args.as_slice() else {
        eprintln!("usage: cri-driver SOCKET VERB < request.json");
        std::process::exit(2);
    };
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        fail(format!("read stdin: {e}"));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(format!("tokio runtime: {e}")));
    match runtime.block_on(call(socket, verb, &input)) {
        Ok(answer) => println!("{answer}"),
        Err(e) => fail(format!("{verb}: {e}")),
    }
}

fn fail(message: String) -> ! {
    eprintln!("cri-driver: {message}");
    std::process::exit(1);
}

/// Connects to `socket` and runs one verb with `input` (JSON).
async fn call(socket: &str, verb: &str, input: &str) -> Outcome {
    let mut client = connect(socket).await?;
    let c = &mut client;
    match verb {
        "status" => status(c).await,
        "run-pod" => run_pod(c, parse(input)?).await,
        "pod-status" => pod_status(c, parse(input)?).await,
        "create-container" => create_container(c, parse(input)?).await,
        "start-container" => start_container(c, parse(input)?).await,
        "stop-container" => stop_container(c, parse(input)?).await,
        "exec" => exec(c, parse(input)?).await,
        "stop-pod" => stop_pod(c, parse(input)?).await,
        "remove-pod" => remove_pod(c, parse(input)?).await,
        "list-pods" => list_pods(c).await,
        other => Err(format!("unknown verb {other:?}")),
    }
}

fn parse<T: for<'a> Deserialize<'a>>(input: &str) -> Result<T, String> {
    serde_json::from_str(input).map_err(|e| format!("request {input:?}: {e}"))
}

/// A gRPC channel over containerd's unix socket (the URI is a placeholder tonic requires).
async fn connect(socket: &str) -> Result<Client, String> {
    let path = socket.to_string();
    let channel = Endpoint::from_static("http://[::]:0")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
        .map_err(|e| format!("connect to {socket}: {e}"))?;
    Ok(RuntimeServiceClient::new(channel))
}

fn grpc(e: tonic::Status) -> String {
    format!("{:?}: {}", e.code(), e.message())
}

/// containerd's verbose info: a map of JSON documents, parsed where they are JSON.
fn info(map: HashMap<String, String>) -> Value {
    let parsed: Map<String, Value> = map
        .into_iter()
        .map(|(k, v)| {
            let value = serde_json::from_str(&v).unwrap_or(Value::String(v));
            (k, value)
        })
        .collect();
    Value::Object(parsed)
}

async fn status(c: &mut Client) -> Outcome {
    let answer = c
        .status(cri::StatusRequest { verbose: true })
        .await
        .map_err(grpc)?
        .into_inner();
    let condition = |kind: &str| {
        answer
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.r#type == kind))
    };
    let ready = |kind: &str| condition(kind).is_some_and(|c| c.status);
    let network = condition("NetworkReady");
    Ok(json!({
        "runtimeReady": ready("RuntimeReady"),
        "networkReady": ready("NetworkReady"),
        "networkReason": network.map(|c| c.reason.as_str()).unwrap_or_default(),
        "networkMessage": network.map(|c| c.message.as_str()).unwrap_or_default(),
        "info": info(answer.info.clone()),
    }))
}

async fn run_pod(c: &mut Client, pod: Pod) -> Outcome {
    let request = cri::RunPodSandboxRequest {
        config: Some(pod.sandbox_config()),
        runtime_handler: String::new(),
    };
    let answer = c.run_pod_sandbox(request).await.map_err(grpc)?.into_inner();
    Ok(json!({"podId": answer.pod_sandbox_id}))
}

async fn pod_status(c: &mut Client, pod: PodRef) -> Outcome {
    let request = cri::PodSandboxStatusRequest {
        pod_sandbox_id: pod.pod_id,
        verbose: true,
    };
    let answer = c
        .pod_sandbox_status(request)
        .await
        .map_err(grpc)?
        .into_inner();
    let status = answer.status.unwrap_or_default();
    let state = status.state().as_str_name();
    let network = status.network.unwrap_or_default();
    Ok(json!({
        "state": state,
        "ip": network.ip,
        "additionalIps": network.additional_ips.iter().map(|ip| &ip.ip).collect::<Vec<_>>(),
        "info": info(answer.info),
    }))
}

async fn create_container(c: &mut Client, new: NewContainer) -> Outcome {
    let config = cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: new.name.clone(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: new.image,
            ..Default::default()
        }),
        command: new.command,
        log_path: format!("{}.log", new.name),
        ..Default::default()
    };
    let request = cri::CreateContainerRequest {
        pod_sandbox_id: new.pod_id,
        config: Some(config),
        sandbox_config: Some(new.pod.sandbox_config()),
    };
    let answer = c
        .create_container(request)
        .await
        .map_err(grpc)?
        .into_inner();
    Ok(json!({"containerId": answer.container_id}))
}

async fn start_container(c: &mut Client, container: ContainerRef) -> Outcome {
    let request = cri::StartContainerRequest {
        container_id: container.container_id,
    };
    c.start_container(request).await.map_err(grpc)?;
    Ok(json!({}))
}

/// StopContainer without a grace period: kubelet's call when a pod is deleted with `--now`.
async fn stop_container(c: &mut Client, container: ContainerRef) -> Outcome {
    let request = cri::StopContainerRequest {
        container_id: container.container_id,
        timeout: 0,
    };
    c.stop_container(request).await.map_err(grpc)?;
    Ok(json!({}))
}

async fn exec(c: &mut Client, exec: Exec) -> Outcome {
    let request = cri::ExecSyncRequest {
        container_id: exec.container_id,
        cmd: exec.cmd,
        timeout: exec.timeout_seconds,
    };
    let answer = c.exec_sync(request).await.map_err(grpc)?.into_inner();
    Ok(json!({
        "exitCode": answer.exit_code,
        "stdout": String::from_utf8_lossy(&answer.stdout),
        "stderr": String::from_utf8_lossy(&answer.stderr),
    }))
}

async fn stop_pod(c: &mut Client, pod: PodRef) -> Outcome {
    let request = cri::StopPodSandboxRequest {
        pod_sandbox_id: pod.pod_id,
    };
    c.stop_pod_sandbox(request).await.map_err(grpc)?;
    Ok(json!({}))
}

async fn remove_pod(c: &mut Client, pod: PodRef) -> Outcome {
    let request = cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod.pod_id,
    };
    c.remove_pod_sandbox(request).await.map_err(grpc)?;
    Ok(json!({}))
}

async fn list_pods(c: &mut Client) -> Outcome {
    let answer = c
        .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
        .await
        .map_err(grpc)?
        .into_inner();
    let pods: Vec<Value> = answer
        .items
        .iter()
        .map(|p| {
            let name = p.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or("");
            json!({"id": p.id, "name": name, "state": p.state().as_str_name()})
        })
        .collect();
    Ok(Value::Array(pods))
}

//! Running a network configuration list the way libcni does.

use super::netns::Netns;
use super::plugin::{make_cni_path, Attachment, CniOutput, Plugin};
use super::temp_dir::TempDir;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

// ---------------------------------------------------------------------------------------------
// Conflist: what libcni does with a network configuration list
// ---------------------------------------------------------------------------------------------

/// Runs a conflist the way libcni 1.1 does: ADD in order, each plugin getting the previous
/// plugin's result as `prevResult`; the final result cached per attachment; CHECK in order and
/// DEL in reverse order, every plugin getting the cached result as `prevResult`.
/// Every plugin config gets the list's `name` and `cniVersion` injected.
#[derive(Debug)]
pub struct Conflist {
    list: Value,
    cni_path: Arc<TempDir>,
    /// Cached ADD results by (container id, ifname), like libcni's result cache.
    cache: HashMap<(String, String), Value>,
}

impl Conflist {
    /// `list` is a conflist: `{"cniVersion", "name", "plugins": [...]}`.
    pub fn new(list: Value) -> Conflist {
        assert!(
            list["plugins"].is_array(),
            "a conflist needs a plugins array: {list}"
        );
        Conflist {
            list,
            cni_path: Arc::new(make_cni_path()),
            cache: HashMap::new(),
        }
    }

    pub fn cni_path(&self) -> &Path {
        self.cni_path.path()
    }

    /// The cached ADD result for `at`, if any.
    pub fn cached(&self, at: &Attachment) -> Option<&Value> {
        self.cache.get(&cache_key(at))
    }

    /// ADD through every plugin; returns the last plugin's output, or the first failure's.
    pub fn add(&mut self, node: &Netns, at: &Attachment) -> CniOutput {
        let mut prev: Option<Value> = None;
        let mut last = None;
        for conf in self.plugins() {
            let out = self.call(node, "ADD", at, &conf, prev.as_ref());
            if !out.success() {
                return out;
            }
            prev = Some(out.stdout.clone());
            last = Some(out);
        }
        let last = last.expect("a conflist has at least one plugin");
        self.cache.insert(cache_key(at), last.stdout.clone());
        last
    }

    /// CHECK through every plugin in order; returns the first failure or the last output.
    pub fn check(&self, node: &Netns, at: &Attachment) -> CniOutput {
        let cached = self.cached_for_version(at);
        self.run_all(node, "CHECK", at, self.plugins(), cached.as_ref())
    }

    /// DEL through every plugin in reverse order; forgets the cached result on success.
    pub fn del(&mut self, node: &Netns, at: &Attachment) -> CniOutput {
        let cached = self.cached_for_version(at);
        let reversed = self.plugins().into_iter().rev().collect();
        let out = self.run_all(node, "DEL", at, reversed, cached.as_ref());
        if out.success() {
            self.cache.remove(&cache_key(at));
        }
        out
    }

    /// Calls each plugin with the same `prev`, stopping at the first failure.
    fn run_all(
        &self,
        node: &Netns,
        command: &str,
        at: &Attachment,
        plugins: Vec<Value>,
        prev: Option<&Value>,
    ) -> CniOutput {
        let mut last = None;
        for conf in plugins {
            let out = self.call(node, command, at, &conf, prev);
            if !out.success() {
                return out;
            }
            last = Some(out);
        }
        last.expect("a conflist has at least one plugin")
    }

    /// One plugin call with `name`, `cniVersion` and `prevResult` injected.
    fn call(
        &self,
        node: &Netns,
        command: &str,
        at: &Attachment,
        conf: &Value,
        prev: Option<&Value>,
    ) -> CniOutput {
        let mut conf = conf.clone();
        conf["name"] = self.list["name"].clone();
        conf["cniVersion"] = self.list["cniVersion"].clone();
        if let Some(prev) = prev {
            conf["prevResult"] = prev.clone();
        }
        let type_name = conf["type"]
            .as_str()
            .expect("every plugin has a type")
            .to_string();
        Plugin::in_cni_path(&type_name, self.cni_path.clone()).run(node, command, at, &conf)
    }

    fn plugins(&self) -> Vec<Value> {
        self.list["plugins"].as_array().cloned().unwrap_or_default()
    }

    /// libcni passes a cached result on DEL and CHECK only from cniVersion 0.4.0 on.
    fn cached_for_version(&self, at: &Attachment) -> Option<Value> {
        let version = self.list["cniVersion"].as_str().unwrap_or("");
        let old = ["0.1.0", "0.2.0", "0.3.0", "0.3.1"].contains(&version);
        if old {
            None
        } else {
            self.cached(at).cloned()
        }
    }
}

fn cache_key(at: &Attachment) -> (String, String) {
    (at.container_id.clone(), at.ifname.clone())
}

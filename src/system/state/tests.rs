use super::files::temp_path;
use super::*;

fn temp_store() -> (StateStore, PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "mvh-state-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    (StateStore::open(&dir).unwrap(), dir)
}

fn record(id: &str) -> Record {
    Record {
        key: AttachmentKey {
            network: "lan".into(),
            container_id: id.into(),
            ifname: "eth0".into(),
        },
        path: RecordedPath::Shim {
            name: "mvh-eth0".into(),
        },
        master: "eth0".into(),
        master_index: 2,
        netns: "/run/netns/x".into(),
        pod_mac: "02:00:00:00:00:01".parse().unwrap(),
        pod_addresses: vec!["10.0.0.5/24".parse().unwrap()],
        node_addresses: vec!["10.0.0.1".parse().unwrap()],
        host_mac: "02:00:00:00:00:02".parse().unwrap(),
        host_routes: vec![],
        shim_addresses: vec![],
        link_group: None,
        pod_ifname: None,
        netns_identity: None,
    }
}

#[test]
fn a_record_of_the_previous_version_still_reads() {
    let old = r#"{
      "key": { "network": "lan", "container_id": "c1", "ifname": "eth0" },
      "hostSide": { "kind": "shim", "name": "mvh-eth0" },
      "master": "eth0", "masterIndex": 2, "netns": "/run/netns/x",
      "podMac": "02:00:00:00:00:01", "podAddresses": ["10.0.0.5/24"],
      "nodeAddresses": ["10.0.0.1"], "hostMac": "02:00:00:00:00:02", "hostRoutes": []
    }"#;
    let read: Record = serde_json::from_str(old).unwrap();
    assert_eq!(read, record("c1"));
}

#[test]
fn records_round_trip_and_are_private() {
    let (store, dir) = temp_store();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let rec = record("c1");
    store.save(&rec).unwrap();
    assert_eq!(store.load(&rec.key).unwrap(), Some(rec.clone()));
    assert_eq!(store.records_of("lan").unwrap(), vec![rec.clone()]);
    assert!(store.records_of("other").unwrap().is_empty());
    let mut other = record("c2");
    other.key.network = "other".into();
    store.save(&other).unwrap();
    assert_eq!(store.records().unwrap().len(), 2);
    store.remove(&other.key).unwrap();
    store.remove(&rec.key).unwrap();
    store.remove(&rec.key).unwrap();
    assert_eq!(store.load(&rec.key).unwrap(), None);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_corrupt_record_reads_as_none() {
    let (store, dir) = temp_store();
    let rec = record("c1");
    store.save(&rec).unwrap();
    fs::write(store.record_path(&rec.key), b"{ half a rec").unwrap();
    assert_eq!(store.load(&rec.key).unwrap(), None);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn ownership_moves_to_the_newest_attachment() {
    let (store, dir) = temp_store();
    let (old, new) = (record("old").key, record("new").key);
    let ip: IpAddr = "10.0.0.5".parse().unwrap();
    store.set_owner(ip, &old).unwrap();
    store.set_owner(ip, &new).unwrap();
    assert!(!store.is_owner(ip, &old).unwrap());
    assert!(store.is_owner(ip, &new).unwrap());
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn temporaries_of_killed_writers_are_found_by_name_and_by_gc() {
    let (store, dir) = temp_store();
    let rec = record("killed");
    let ip = rec.pod_addresses[0].ip();
    store.add_user("mvh-eth0", &record("other").key).unwrap();
    let record_temp = temp_path(&store.record_path(&rec.key));
    let owner_temp = temp_path(&store.owner_path(ip));
    let user_temp = temp_path(&store.users_dir("mvh-eth0").join(rec.key.file_stem()));
    for temp in [&record_temp, &owner_temp, &user_temp] {
        fs::write(temp, b"half").unwrap();
    }
    assert_eq!(
        record_temp,
        dir.join("attachments/.lan:killed:eth0.json.tmp")
    );
    assert_eq!(store.users("mvh-eth0").unwrap(), vec![record("other").key]);
    store.remove_temporaries_of(&rec).unwrap();
    for temp in [&record_temp, &owner_temp, &user_temp] {
        assert!(!temp.exists(), "{temp:?} left");
    }
    fs::write(&record_temp, b"half").unwrap();
    store.remove_record_temporary(&rec.key).unwrap();
    assert!(!record_temp.exists());

    // GC: a locked write's leftover always goes; an IPAM version's only once its writer
    // (this test process, for now) is gone. Real entries stay.
    for temp in [&record_temp, &owner_temp, &user_temp] {
        fs::write(temp, b"half").unwrap();
    }
    let versions = dir.join("ipam-versions");
    fs::create_dir_all(&versions).unwrap();
    write_unlocked(&versions.join("host-local"), b"x 1.0.0").unwrap();
    let live = versions.join(format!(".host-local.tmp{}", std::process::id()));
    let dead = versions.join(format!(".host-local.tmp{}", u32::MAX));
    fs::write(&live, b"").unwrap();
    fs::write(&dead, b"").unwrap();
    store.remove_dead_temporaries().unwrap();
    for temp in [&record_temp, &owner_temp, &user_temp, &dead] {
        assert!(!temp.exists(), "{temp:?} left");
    }
    assert!(live.exists());
    assert!(!store.has_no_users("mvh-eth0").unwrap());
    assert!(versions.join("host-local").exists());
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_fifo_in_the_state_directory_is_no_record_and_never_waited_on() {
    let (store, dir) = temp_store();
    let key = record("fifo").key;
    nix::unistd::mkfifo(&store.record_path(&key), nix::sys::stat::Mode::S_IRWXU).unwrap();
    assert_eq!(store.load(&key).unwrap(), None);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_existing_store_creates_nothing() {
    let dir = std::env::temp_dir().join(format!("mvh-state-absent-{}", std::process::id()));
    let store = StateStore::existing(&dir);
    let key = record("x").key;
    assert_eq!(store.load(&key).unwrap(), None);
    store.clear_owners_of(&key).unwrap();
    store.remove_record_temporary(&key).unwrap();
    store.remove(&key).unwrap();
    assert!(!dir.exists());
}

#[test]
fn keys_come_back_from_their_file_stems_and_temporary_files_do_not() {
    let key = record("c1").key;
    assert_eq!(AttachmentKey::from_file_stem(&key.file_stem()), Some(key));
    for bad in [
        "",
        "lan",
        "lan:c1",
        ".lan:c1:eth0.tmp",
        "l/an:c1:eth0",
        "lan::eth0",
    ] {
        assert_eq!(AttachmentKey::from_file_stem(bad), None, "{bad:?}");
    }
}

#[test]
fn a_shim_is_unused_after_its_last_user_leaves() {
    let (store, dir) = temp_store();
    let (a, b) = (record("a").key, record("b").key);
    store.add_user("mvh-eth0", &a).unwrap();
    store.add_user("mvh-eth0", &b).unwrap();
    assert_eq!(store.users("mvh-eth0").unwrap().len(), 2);
    assert_eq!(store.remove_user("mvh-eth0", &a).unwrap(), Some(false));
    assert_eq!(store.users("mvh-eth0").unwrap(), vec![b.clone()]);
    assert_eq!(store.remove_user("mvh-eth0", &b).unwrap(), Some(true));
    assert_eq!(store.remove_user("mvh-eth0", &b).unwrap(), None);
    assert!(store.has_no_users("never-used").unwrap());
    fs::remove_dir_all(dir).unwrap();
}

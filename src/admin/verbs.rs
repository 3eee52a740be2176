//! One function per mqadmin verb: the requests it makes, and what it prints.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use clap::Subcommand;
use serde_json::{json, Value};

use super::{table, Result, Session};
use crate::protocol::object_keyed::decode_offset_table;
use crate::protocol::{decode_json, ConsumerConnection, KvTable, ProducerConnection, TopicList};
use crate::remoting::codes::{request_code as rq, response_code as rs};
use crate::remoting::RemotingCommand;
use rocketcore_storage::{properties, RecordView};

#[derive(Subcommand, Debug)]
pub enum Verb {
    /// Brokers of each cluster, with their message counts.
    #[command(name = "clusterList")]
    ClusterList {
        #[arg(short = 'c', long = "clusterName")]
        cluster: Option<String>,
    },
    /// A broker's runtime statistics (GET_BROKER_RUNTIME_INFO).
    #[command(name = "brokerStatus")]
    BrokerStatus {
        #[arg(short = 'b', long = "brokerAddr")]
        broker: Option<SocketAddr>,
        #[arg(short = 'c', long = "clusterName")]
        cluster: Option<String>,
    },
    /// Replication: a master's slaves and their lag, or a slave's master
    /// (GET_BROKER_HA_STATUS). `-c` asks every broker of the cluster.
    #[command(name = "haStatus")]
    HaStatus {
        #[arg(short = 'b', long = "brokerAddr")]
        broker: Option<SocketAddr>,
        #[arg(short = 'c', long = "clusterName")]
        cluster: Option<String>,
    },
    /// Makes `-b` its group's master at run time and the other members its
    /// slaves (NOTIFY_BROKER_ROLE_CHANGED, with a new epoch). Members the
    /// name servers do not list (a master that is down) can be named with
    /// `-m`; one that is unreachable now is told when it is back by running
    /// the verb again.
    #[command(name = "haSwitch")]
    HaSwitch {
        #[arg(short = 'b', long = "brokerAddr")]
        broker: SocketAddr,
        #[arg(short = 'm', long = "members", value_delimiter = ',')]
        members: Vec<SocketAddr>,
        /// The new master's role: SYNC_MASTER (the default) or ASYNC_MASTER.
        #[arg(long = "role", default_value = "SYNC_MASTER")]
        role: String,
    },
    /// A controller node's view: its leader, term and every group's
    /// master, epoch and in-sync set (CONTROLLER_GET_METADATA_INFO).
    #[command(name = "getControllerMetaData")]
    GetControllerMetaData {
        #[arg(short = 'a', long = "controllerAddress")]
        controller: SocketAddr,
    },
    /// Groups' in-sync replica sets as the controller keeps them.
    #[command(name = "getSyncStateSet")]
    GetSyncStateSet {
        #[arg(short = 'a', long = "controllerAddress")]
        controller: SocketAddr,
        /// Broker names; all groups when absent.
        #[arg(short = 'b', long = "brokerName", value_delimiter = ',')]
        names: Vec<String>,
    },
    /// The settings a broker runs with (GET_BROKER_CONFIG).
    #[command(name = "getBrokerConfig")]
    GetBrokerConfig {
        #[arg(short = 'b', long = "brokerAddr")]
        broker: Option<SocketAddr>,
        #[arg(short = 'c', long = "clusterName")]
        cluster: Option<String>,
    },
    /// Change settings of a running broker (UPDATE_BROKER_CONFIG).
    #[command(name = "updateBrokerConfig")]
    UpdateBrokerConfig {
        #[arg(short = 'k', long = "key")]
        key: String,
        #[arg(short = 'v', long = "value")]
        value: String,
        #[arg(short = 'b', long = "brokerAddr", required_unless_present = "cluster")]
        broker: Option<SocketAddr>,
        #[arg(short = 'c', long = "clusterName")]
        cluster: Option<String>,
    },
    /// The settings the name server runs with (GET_NAMESRV_CONFIG).
    #[command(name = "getNamesrvConfig")]
    GetNamesrvConfig,
    /// Change a setting of a running name server (UPDATE_NAMESRV_CONFIG).
    #[command(name = "updateNamesrvConfig")]
    UpdateNamesrvConfig {
        #[arg(short = 'k', long = "key")]
        key: String,
        #[arg(short = 'v', long = "value")]
        value: String,
    },
    /// Every topic the name server knows.
    #[command(name = "topicList")]
    TopicList,
    /// A topic's route, as the name server gives it to clients.
    #[command(name = "topicRoute")]
    TopicRoute {
        #[arg(short = 't', long = "topic")]
        topic: String,
    },
    /// Min and max offset of each queue of a topic.
    #[command(name = "topicStatus")]
    TopicStatus {
        #[arg(short = 't', long = "topic")]
        topic: String,
    },
    /// Create or update a topic on one broker (-b) or every master of a cluster (-c).
    #[command(name = "updateTopic")]
    UpdateTopic {
        #[arg(short = 't', long = "topic")]
        topic: String,
        #[arg(short = 'b', long = "brokerAddr", required_unless_present = "cluster")]
        broker: Option<SocketAddr>,
        #[arg(short = 'c', long = "clusterName")]
        cluster: Option<String>,
        #[arg(short = 'r', long = "readQueueNums", default_value_t = 8)]
        read_queues: u32,
        #[arg(short = 'w', long = "writeQueueNums", default_value_t = 8)]
        write_queues: u32,
        /// 2 read, 4 write, 6 both.
        #[arg(short = 'p', long = "perm", default_value_t = 6)]
        perm: u32,
        #[arg(short = 'o', long = "order", default_value_t = false)]
        order: bool,
    },
    /// Delete a topic from every master of a cluster and from the name server.
    #[command(name = "deleteTopic")]
    DeleteTopic {
        #[arg(short = 't', long = "topic")]
        topic: String,
        #[arg(short = 'c', long = "clusterName")]
        cluster: String,
    },
    /// Create or update a subscription group.
    #[command(name = "updateSubGroup")]
    UpdateSubGroup {
        #[arg(short = 'g', long = "groupName")]
        group: String,
        #[arg(short = 'b', long = "brokerAddr", required_unless_present = "cluster")]
        broker: Option<SocketAddr>,
        #[arg(short = 'c', long = "clusterName")]
        cluster: Option<String>,
        #[arg(short = 's', long = "consumeEnable", default_value_t = true, action = clap::ArgAction::Set)]
        consume_enable: bool,
        #[arg(short = 'd', long = "consumeBroadcastEnable", default_value_t = true, action = clap::ArgAction::Set)]
        broadcast_enable: bool,
        #[arg(short = 'q', long = "retryQueueNums", default_value_t = 1)]
        retry_queues: u32,
        #[arg(short = 'r', long = "retryMaxTimes", default_value_t = 16)]
        retry_max_times: u32,
    },
    /// Delete a subscription group.
    #[command(name = "deleteSubGroup")]
    DeleteSubGroup {
        #[arg(short = 'g', long = "groupName")]
        group: String,
        #[arg(short = 'b', long = "brokerAddr", required_unless_present = "cluster")]
        broker: Option<SocketAddr>,
        #[arg(short = 'c', long = "clusterName")]
        cluster: Option<String>,
    },
    /// Lag of a consumer group per queue: the queue's max offset against
    /// the group's committed offset.
    /// Without -g: every consumer group with its clients and total lag.
    #[command(name = "consumerProgress")]
    ConsumerProgress {
        #[arg(short = 'g', long = "groupName")]
        group: Option<String>,
        /// Topics to look at (default: the group's subscriptions, from its
        /// connected consumers).
        #[arg(short = 't', long = "topic")]
        topic: Option<String>,
    },
    /// Move a group's committed offsets of a topic to the first message
    /// stored at or after a time (millis, `now`, or yyyy-MM-dd#HH:mm:ss:SSS
    /// in UTC). Consumers pick the offsets up at their next rebalance or
    /// restart.
    #[command(name = "resetOffsetByTime")]
    ResetOffsetByTime {
        #[arg(short = 'g', long = "group")]
        group: String,
        #[arg(short = 't', long = "topic")]
        topic: String,
        #[arg(short = 's', long = "timestamp")]
        timestamp: String,
    },
    /// Copy a group's committed offsets of a topic to another group.
    #[command(name = "cloneGroupOffset")]
    CloneGroupOffset {
        #[arg(short = 's', long = "srcGroup")]
        src: String,
        #[arg(short = 'd', long = "destGroup")]
        dest: String,
        #[arg(short = 't', long = "topic")]
        topic: String,
    },
    /// The message at one queue offset.
    #[command(name = "queryMsgByOffset")]
    QueryMsgByOffset {
        #[arg(short = 't', long = "topic")]
        topic: String,
        #[arg(short = 'b', long = "brokerName")]
        broker: String,
        #[arg(short = 'i', long = "queueId")]
        queue: i32,
        #[arg(short = 'o', long = "offset")]
        offset: i64,
    },
    /// Print (consume without committing) up to -c messages of a topic from
    /// the start of each queue.
    #[command(name = "consumeMessage")]
    ConsumeMessage {
        #[arg(short = 't', long = "topic")]
        topic: String,
        #[arg(short = 'c', long = "MessageNumber", default_value_t = 32)]
        count: usize,
    },
    /// Send a group's dead letters back to it: each message of `%DLQ%group`
    /// (or only the one whose message id is -i) is sent to the group's
    /// retry topic, so only that group consumes it again, under its original
    /// topic name.
    #[command(name = "resendDlqMessage")]
    ResendDlqMessage {
        #[arg(short = 'g', long = "consumerGroup")]
        group: String,
        /// The message id (UNIQ_KEY) of the one message to re-send.
        #[arg(short = 'i', long = "msgId")]
        id: Option<String>,
        #[arg(short = 'c', long = "MessageNumber", default_value_t = 32)]
        count: usize,
    },
    /// Take write permission away from a broker in the name server's routes.
    #[command(name = "wipeWritePerm")]
    WipeWritePerm {
        #[arg(short = 'b', long = "brokerName")]
        broker: String,
    },
    /// Give a broker write permission again.
    #[command(name = "addWritePerm")]
    AddWritePerm {
        #[arg(short = 'b', long = "brokerName")]
        broker: String,
    },
    /// The clients of a consumer group, on every master.
    #[command(name = "consumerConnection")]
    ConsumerConnection {
        #[arg(short = 'g', long = "consumerGroup")]
        group: String,
    },
    /// What each consumer of a group reports about itself
    /// (GET_CONSUMER_RUNNING_INFO, relayed by the broker to the client).
    #[command(name = "consumerStatus")]
    ConsumerStatus {
        #[arg(short = 'g', long = "consumerGroup")]
        group: String,
        /// Only this client id.
        #[arg(short = 'i', long = "clientId")]
        client: Option<String>,
        /// Ask for the client's thread stacks too (Java clients).
        #[arg(short = 's', long = "jstackEnable", default_value_t = false, action = clap::ArgAction::Set)]
        jstack: bool,
    },
    /// Every producer a broker knows, by group (GET_ALL_PRODUCER_INFO).
    #[command(name = "producer")]
    Producer {
        #[arg(short = 'b', long = "brokerAddr")]
        broker: SocketAddr,
    },
    /// Lag of every group on one broker (GET_BROKER_CONSUME_STATS).
    #[command(name = "brokerConsumeStats")]
    BrokerConsumeStats {
        #[arg(short = 'b', long = "brokerAddr")]
        broker: SocketAddr,
        /// Only groups configured to consume orderly.
        #[arg(short = 'o', long = "order", default_value_t = false, action = clap::ArgAction::Set)]
        order: bool,
    },
    /// The clients of a producer group sending to a topic.
    #[command(name = "producerConnection")]
    ProducerConnection {
        #[arg(short = 'g', long = "producerGroup")]
        group: String,
        #[arg(short = 't', long = "topic")]
        topic: String,
    },
    /// Send one message.
    #[command(name = "sendMessage")]
    SendMessage {
        #[arg(short = 't', long = "topic")]
        topic: String,
        #[arg(short = 'p', long = "body")]
        body: String,
        #[arg(short = 'k', long = "key")]
        keys: Option<String>,
        #[arg(short = 'c', long = "tags")]
        tags: Option<String>,
        #[arg(short = 'b', long = "broker")]
        broker: Option<String>,
        #[arg(short = 'i', long = "qid")]
        queue: Option<i32>,
    },
    /// Messages of a topic by key (the KEYS property).
    #[command(name = "queryMsgByKey")]
    QueryMsgByKey {
        #[arg(short = 't', long = "topic")]
        topic: String,
        #[arg(short = 'k', long = "msgKey")]
        key: String,
    },
    /// Messages by their message id (the UNIQ_KEY clients assign).
    #[command(name = "queryMsgByUniqueKey")]
    QueryMsgByUniqueKey {
        #[arg(short = 'i', long = "msgId")]
        id: String,
        #[arg(short = 't', long = "topic")]
        topic: String,
    },
    /// Messages of a topic stored between two times, queue by queue (-b
    /// and -e take millis, `now` or yyyy-MM-dd#HH:mm:ss:SSS; default: all).
    #[command(name = "printMsg")]
    PrintMsg {
        #[arg(short = 't', long = "topic")]
        topic: String,
        #[arg(short = 'b', long = "beginTimestamp")]
        begin: Option<String>,
        #[arg(short = 'e', long = "endTimestamp")]
        end: Option<String>,
        /// Print bodies.
        #[arg(short = 'd', long = "printBody", default_value_t = true, action = clap::ArgAction::Set)]
        print_body: bool,
        /// Messages printed at most.
        #[arg(long = "max", default_value_t = 256)]
        max: usize,
    },
    /// One message by its offset message id (the broker's address and the
    /// commit-log offset).
    #[command(name = "queryMsgById")]
    QueryMsgById {
        #[arg(short = 'i', long = "msgId")]
        id: String,
    },
    /// Set a KV config item on the name server.
    #[command(name = "updateKvConfig")]
    UpdateKvConfig {
        #[arg(short = 's', long = "namespace")]
        namespace: String,
        #[arg(short = 'k', long = "key")]
        key: String,
        #[arg(short = 'v', long = "value")]
        value: String,
    },
    /// Delete a KV config item from the name server.
    #[command(name = "deleteKvConfig")]
    DeleteKvConfig {
        #[arg(short = 's', long = "namespace")]
        namespace: String,
        #[arg(short = 'k', long = "key")]
        key: String,
    },
}

/// Verbs that change the cluster: the console runs them only for the
/// holder of its admin password.
pub const WRITE_VERBS: &[&str] = &[
    "updateBrokerConfig",
    "updateNamesrvConfig",
    "updateTopic",
    "deleteTopic",
    "updateSubGroup",
    "deleteSubGroup",
    "resetOffsetByTime",
    "cloneGroupOffset",
    "resendDlqMessage",
    "wipeWritePerm",
    "addWritePerm",
    "sendMessage",
    "updateKvConfig",
    "deleteKvConfig",
];

fn print(s: &Session, value: Value, text: String) {
    s.print(value, text);
}

/// One line per address.
fn lines(addrs: &[SocketAddr], line: impl Fn(&SocketAddr) -> String) -> String {
    addrs.iter().map(line).collect::<Vec<_>>().join("\n")
}

/// A properties-text body (GET_BROKER_CONFIG, GET_NAMESRV_CONFIG).
fn properties_of(r: &RemotingCommand) -> BTreeMap<String, String> {
    crate::broker::config::parse_properties(&String::from_utf8_lossy(
        r.body.as_deref().unwrap_or(b""),
    ))
}

/// Settings as mqadmin prints them: the server, then `key =  value`.
fn properties_text(addr: SocketAddr, props: &BTreeMap<String, String>) -> String {
    let mut text = format!("============{addr}============");
    for (k, v) in props {
        text.push_str(&format!("\n{k:<50}=  {v}"));
    }
    text
}

fn body<T: serde::de::DeserializeOwned>(r: &RemotingCommand) -> Result<T> {
    decode_json(r.body.as_deref().unwrap_or(b"")).map_err(|e| e.to_string())
}

fn runtime_info(s: &Session, addr: SocketAddr) -> Result<BTreeMap<String, String>> {
    let r = s.expect_ok(
        addr,
        RemotingCommand::new_request(rq::GET_BROKER_RUNTIME_INFO),
    )?;
    Ok(body::<KvTable>(&r)?.table)
}

/// Every broker `-b` or `-c` names, slaves included: (name, id, address).
fn every_broker(
    s: &Session,
    broker: Option<SocketAddr>,
    cluster: Option<&str>,
) -> Result<Vec<(String, i64, SocketAddr)>> {
    let info = s.cluster_info()?;
    let mut out = Vec::new();
    for (name, data) in &info.broker_addr_table {
        if cluster.is_some_and(|c| c != data.cluster) {
            continue;
        }
        for (id, addr) in &data.broker_addrs {
            let Ok(addr) = addr.parse::<SocketAddr>() else {
                continue;
            };
            if broker.is_none_or(|b| b == addr) {
                out.push((name.clone(), *id, addr));
            }
        }
    }
    if let (Some(b), true) = (broker, out.is_empty()) {
        // An address the name server does not list (a slave whose master
        // is gone is still listed; this is for one never registered).
        out.push((String::new(), -1, b));
    }
    Ok(out)
}

fn controller_meta(s: &Session, addr: SocketAddr, names: Option<&[String]>) -> Result<()> {
    let r = s.expect_ok(
        addr,
        RemotingCommand::new_request(crate::controller::codes::GET_METADATA_INFO),
    )?;
    let meta: Value = serde_json::from_slice(r.body.as_deref().unwrap_or(b"{}"))
        .map_err(|e| format!("{addr}: bad controller metadata: {e}"))?;
    let mut text = Vec::new();
    let groups = meta["groups"].as_object().cloned().unwrap_or_default();
    let wanted = |n: &str| names.is_none_or(|w| w.is_empty() || w.iter().any(|x| x == n));
    match names {
        None => text.push(format!(
            "#ControllerLeaderId {}\n#IsLeader {}\n#Term {}",
            r.ext_str_opt("controllerLeaderId").unwrap_or("-1"),
            r.ext_str_opt("isLeader").unwrap_or("false"),
            r.ext_str_opt("term").unwrap_or("0")
        )),
        Some(_) => text.push(format!(
            "{:<24} {:<10} {:<12} {:<14} {}",
            "#BrokerName", "#MasterId", "#MasterEpoch", "#SyncSetEpoch", "#SyncStateSet"
        )),
    }
    let mut out = serde_json::Map::new();
    for (name, g) in groups.iter().filter(|(n, _)| wanted(n)) {
        if names.is_some() {
            text.push(format!(
                "{:<24} {:<10} {:<12} {:<14} {}",
                name,
                g["master"]
                    .as_i64()
                    .map_or("-".to_string(), |m| m.to_string()),
                g["master_epoch"],
                g["sync_set_epoch"],
                g["sync_set"]
            ));
        } else {
            for (id, rep) in g["replicas"].as_object().into_iter().flatten() {
                let master = g["master"].as_i64().map(|m| m.to_string()) == Some(id.clone());
                text.push(format!(
                    "{name:<24} id {id:<4} {:<22} {}",
                    rep["addr"].as_str().unwrap_or(""),
                    if master { "master" } else { "" }
                ));
            }
        }
        out.insert(name.clone(), g.clone());
    }
    let mut v = json!({ "groups": out });
    v["isLeader"] = (r.ext_str_opt("isLeader") == Some("true")).into();
    print(s, v, text.join("\n"));
    Ok(())
}

fn ha_switch(s: &Session, target: SocketAddr, extra: &[SocketAddr], role: &str) -> Result<()> {
    let info = s.cluster_info()?;
    let mut members: Vec<SocketAddr> = info
        .broker_addr_table
        .values()
        .filter(|d| d.broker_addrs.values().any(|a| a.parse() == Ok(target)))
        .flat_map(|d| d.broker_addrs.values().filter_map(|a| a.parse().ok()))
        .collect();
    members.extend_from_slice(extra);
    members.push(target);
    members.sort();
    members.dedup();
    // Each member's epoch, id and HA address; the unreachable are left
    // for a later run.
    let mut reached: Vec<(SocketAddr, Value)> = Vec::new();
    let mut text = Vec::new();
    for addr in &members {
        match s.expect_ok(
            *addr,
            RemotingCommand::new_request(rq::GET_BROKER_HA_STATUS),
        ) {
            Ok(r) => {
                let v: Value = serde_json::from_slice(r.body.as_deref().unwrap_or(b"{}"))
                    .map_err(|e| format!("{addr}: bad HA status: {e}"))?;
                reached.push((*addr, v));
            }
            Err(e) if *addr == target => return Err(format!("{target}: {e}")),
            Err(e) => text.push(format!("{addr:<24} unreachable, not told: {e}")),
        }
    }
    let epoch = reached
        .iter()
        .filter_map(|(_, v)| v["epoch"].as_i64())
        .max()
        .unwrap_or(0)
        + 1;
    let target_ha = reached
        .iter()
        .find(|(a, _)| *a == target)
        .and_then(|(_, v)| v["haServerAddr"].as_str().map(str::to_string))
        .ok_or_else(|| format!("{target} did not say where it accepts slaves (haServerAddr)"))?;
    let mut next_id = reached
        .iter()
        .filter_map(|(_, v)| v["brokerId"].as_i64())
        .max()
        .unwrap_or(0)
        + 1;
    let tell = |addr: SocketAddr, id: Option<i64>| {
        let mut cmd = RemotingCommand::new_request(rq::NOTIFY_BROKER_ROLE_CHANGED);
        cmd.set_ext("masterAddress", target);
        cmd.set_ext("masterEpoch", epoch);
        cmd.set_ext("masterHaAddress", &target_ha);
        cmd.set_ext("masterBrokerId", 0);
        if let Some(id) = id {
            cmd.set_ext("brokerId", id);
        }
        s.expect_ok(addr, cmd)
    };
    // The others first: a master fenced before the new one starts takes no
    // sends that the switch would then cut.
    for (addr, v) in &reached {
        if *addr == target {
            continue;
        }
        let id = match v["brokerId"].as_i64() {
            Some(id) if id > 0 => id,
            _ => {
                next_id += 1;
                next_id - 1
            }
        };
        match tell(*addr, Some(id)) {
            Ok(_) => text.push(format!(
                "{addr:<24} slave (brokerId {id}) of {target}, epoch {epoch}"
            )),
            Err(e) => text.push(format!("{addr:<24} refused: {e}")),
        }
    }
    let mut promote = RemotingCommand::new_request(rq::NOTIFY_BROKER_ROLE_CHANGED);
    promote.set_ext("masterAddress", target);
    promote.set_ext("masterEpoch", epoch);
    promote.set_ext("masterHaAddress", &target_ha);
    promote.set_ext("masterBrokerId", 0);
    promote.set_ext("brokerRole", role);
    s.expect_ok(target, promote)?;
    text.push(format!("{target:<24} master, epoch {epoch}"));
    print(
        s,
        json!({"master": target.to_string(), "epoch": epoch}),
        text.join("\n"),
    );
    Ok(())
}

fn ha_status(s: &Session, broker: Option<SocketAddr>, cluster: Option<&str>) -> Result<()> {
    if broker.is_none() && cluster.is_none() {
        return Err("haStatus needs -b brokerAddr or -c clusterName".into());
    }
    let mut all = BTreeMap::new();
    let mut text = Vec::new();
    for (name, id, addr) in every_broker(s, broker, cluster)? {
        let r = s.expect_ok(addr, RemotingCommand::new_request(rq::GET_BROKER_HA_STATUS))?;
        let v: Value = serde_json::from_slice(r.body.as_deref().unwrap_or(b"{}"))
            .map_err(|e| format!("{addr}: bad HA status: {e}"))?;
        if v["master"] == true {
            text.push(format!(
                "#Broker {name} id {id} {addr} (master)\n#MasterCommitLogMaxOffset {}\n#InSyncSlaveNum {}",
                v["masterCommitLogMaxOffset"], v["inSyncSlaveNums"]
            ));
            text.push(format!(
                "{:<24} {:<8} {:>20} {:>14} {:<7}",
                "#SlaveAddr", "#SlaveId", "#SlaveAckOffset", "#Diff", "#InSync"
            ));
            for c in v["haConnectionInfo"].as_array().into_iter().flatten() {
                text.push(format!(
                    "{:<24} {:<8} {:>20} {:>14} {:<7}",
                    c["addr"].as_str().unwrap_or(""),
                    c["slaveBrokerId"].to_string(),
                    c["slaveAckOffset"].to_string(),
                    c["diff"].to_string(),
                    c["inSync"].to_string()
                ));
            }
        } else {
            let c = &v["haClientRuntimeInfo"];
            text.push(format!(
                "#Broker {name} id {id} {addr} (slave)\n#MasterAddr {}\n#Following {}\n#MaxOffset {}\n#LastError {}",
                c["masterAddr"].as_str().unwrap_or(""),
                c["isActivated"],
                c["maxOffset"],
                c["lastError"].as_str().unwrap_or("-")
            ));
        }
        all.insert(addr.to_string(), v);
    }
    print(s, json!(all), text.join("\n"));
    Ok(())
}

pub fn run(s: &Session, verb: Verb) -> Result<()> {
    match verb {
        Verb::ClusterList { cluster } => cluster_list(s, cluster.as_deref()),
        Verb::BrokerStatus { broker, cluster } => {
            let mut all = BTreeMap::new();
            let mut text = Vec::new();
            for (name, addr) in s.masters(broker, cluster.as_deref())? {
                let info = runtime_info(s, addr)?;
                for (k, v) in &info {
                    text.push(format!("{name:<16} {addr:<22} {k:<32}: {v}"));
                }
                all.insert(addr.to_string(), json!(info));
            }
            print(s, json!(all), text.join("\n"));
            Ok(())
        }
        Verb::GetBrokerConfig { broker, cluster } => {
            let mut all = BTreeMap::new();
            let mut text = Vec::new();
            for (name, addr) in s.masters(broker, cluster.as_deref())? {
                let r = s.expect_ok(addr, RemotingCommand::new_request(rq::GET_BROKER_CONFIG))?;
                let props = properties_of(&r);
                text.push(properties_text(addr, &props));
                all.insert(name, json!(props));
            }
            print(s, json!(all), text.join("\n"));
            Ok(())
        }
        Verb::UpdateBrokerConfig {
            key,
            value,
            broker,
            cluster,
        } => {
            let done = s.on_masters(broker, cluster.as_deref(), || {
                RemotingCommand::new_request(rq::UPDATE_BROKER_CONFIG)
                    .with_body(format!("{key}={value}\n").into_bytes())
            })?;
            let text = lines(&done, |a| format!("update broker config success, {a}"));
            print(
                s,
                json!({"brokers": done, "key": key, "value": value}),
                text,
            );
            Ok(())
        }
        Verb::HaStatus { broker, cluster } => ha_status(s, broker, cluster.as_deref()),
        Verb::GetControllerMetaData { controller } => controller_meta(s, controller, None),
        Verb::GetSyncStateSet { controller, names } => controller_meta(s, controller, Some(&names)),
        Verb::HaSwitch {
            broker,
            members,
            role,
        } => ha_switch(s, broker, &members, &role),
        Verb::GetNamesrvConfig => {
            let r = s.namesrv_ok(RemotingCommand::new_request(rq::GET_NAMESRV_CONFIG))?;
            let props = properties_of(&r);
            let text = properties_text(s.namesrv_addr(), &props);
            print(s, json!(props), text);
            Ok(())
        }
        Verb::UpdateNamesrvConfig { key, value } => {
            let cmd = RemotingCommand::new_request(rq::UPDATE_NAMESRV_CONFIG)
                .with_body(format!("{key}={value}\n").into_bytes());
            s.namesrv_ok(cmd)?;
            print(
                s,
                json!({"key": key, "value": value}),
                format!("update name server config success, {}", s.namesrv_addr()),
            );
            Ok(())
        }
        Verb::TopicList => {
            let r = s.namesrv_ok(RemotingCommand::new_request(
                rq::GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
            ))?;
            let mut topics = body::<TopicList>(&r)?.topic_list;
            topics.sort();
            print(s, json!(topics), topics.join("\n"));
            Ok(())
        }
        Verb::TopicRoute { topic } => {
            let route = s.route(&topic)?;
            let value = serde_json::to_value(&route).map_err(|e| e.to_string())?;
            let text = serde_json::to_string_pretty(&value).unwrap_or_default();
            print(s, value, text);
            Ok(())
        }
        Verb::TopicStatus { topic } => topic_status(s, &topic),
        Verb::UpdateTopic {
            topic,
            broker,
            cluster,
            read_queues,
            write_queues,
            perm,
            order,
        } => {
            let done = s.on_masters(broker, cluster.as_deref(), || {
                let mut cmd = RemotingCommand::new_request(rq::UPDATE_AND_CREATE_TOPIC);
                cmd.set_ext("topic", &topic);
                cmd.set_ext("defaultTopic", "TBW102");
                cmd.set_ext("readQueueNums", read_queues);
                cmd.set_ext("writeQueueNums", write_queues);
                cmd.set_ext("perm", perm);
                cmd.set_ext("topicFilterType", "SINGLE_TAG");
                cmd.set_ext("topicSysFlag", 0);
                cmd.set_ext("order", order);
                cmd
            })?;
            let text = lines(&done, |a| format!("create topic to {a} success."));
            let config = json!({"topicName": topic, "readQueueNums": read_queues,
                "writeQueueNums": write_queues, "perm": perm, "order": order});
            print(
                s,
                json!({"brokers": done, "topicConfig": config}),
                format!("{text}\n{config}"),
            );
            Ok(())
        }
        Verb::DeleteTopic { topic, cluster } => {
            s.on_masters(None, Some(&cluster), || {
                let mut cmd = RemotingCommand::new_request(rq::DELETE_TOPIC_IN_BROKER);
                cmd.set_ext("topic", &topic);
                cmd
            })?;
            let mut cmd = RemotingCommand::new_request(rq::DELETE_TOPIC_IN_NAMESRV);
            cmd.set_ext("topic", &topic);
            cmd.set_ext("clusterName", &cluster);
            s.namesrv_ok(cmd)?;
            print(
                s,
                json!({"topic": topic, "cluster": cluster, "deleted": true}),
                format!("delete topic [{topic}] from cluster [{cluster}] success."),
            );
            Ok(())
        }
        Verb::UpdateSubGroup {
            group,
            broker,
            cluster,
            consume_enable,
            broadcast_enable,
            retry_queues,
            retry_max_times,
        } => {
            let config = json!({
                "groupName": group,
                "consumeEnable": consume_enable,
                "consumeFromMinEnable": true,
                "consumeBroadcastEnable": broadcast_enable,
                "retryQueueNums": retry_queues,
                "retryMaxTimes": retry_max_times,
                "brokerId": 0,
                "whichBrokerWhenConsumeSlowly": 1,
                "notifyConsumerIdsChangedEnable": true,
            });
            let bytes = serde_json::to_vec(&config).map_err(|e| e.to_string())?;
            let done = s.on_masters(broker, cluster.as_deref(), || {
                RemotingCommand::new_request(rq::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP)
                    .with_body(bytes.clone())
            })?;
            let text = lines(&done, |a| {
                format!("create subscription group to {a} success.")
            });
            print(s, config.clone(), format!("{text}\n{config}"));
            Ok(())
        }
        Verb::DeleteSubGroup {
            group,
            broker,
            cluster,
        } => {
            let done = s.on_masters(broker, cluster.as_deref(), || {
                let mut cmd = RemotingCommand::new_request(rq::DELETE_SUBSCRIPTIONGROUP);
                cmd.set_ext("groupName", &group);
                cmd
            })?;
            let text = lines(&done, |a| {
                format!("delete subscription group [{group}] from broker [{a}] success.")
            });
            print(s, json!({"group": group, "deleted": true}), text);
            Ok(())
        }
        Verb::ConsumerConnection { group } => consumer_connection(s, &group),
        Verb::Producer { broker } => {
            let r = s.expect_ok(
                broker,
                RemotingCommand::new_request(rq::GET_ALL_PRODUCER_INFO),
            )?;
            let info =
                crate::protocol::object_keyed::parse_lenient(r.body.as_deref().unwrap_or(b"{}"))?;
            let mut text = Vec::new();
            if let Some(groups) = info["data"].as_object() {
                for (group, list) in groups {
                    let list = list.as_array().cloned().unwrap_or_default();
                    if list.is_empty() {
                        text.push(format!("producer group ({group}) instances are empty"));
                    }
                    for p in list {
                        text.push(format!("producer group ({group}) instance : {p}"));
                    }
                }
            }
            if text.is_empty() {
                text.push(format!("no producer is registered on {broker}"));
            }
            print(s, info["data"].clone(), text.join("\n"));
            Ok(())
        }
        Verb::BrokerConsumeStats { broker, order } => broker_consume_stats(s, broker, order),
        Verb::ConsumerStatus {
            group,
            client,
            jstack,
        } => consumer_status(s, &group, client.as_deref(), jstack),
        Verb::ConsumerProgress { group, topic } => match group {
            Some(g) => consumer_progress(s, &g, topic),
            None => group_list(s),
        },
        Verb::ResetOffsetByTime {
            group,
            topic,
            timestamp,
        } => reset_offset_by_time(s, &group, &topic, &timestamp),
        Verb::CloneGroupOffset { src, dest, topic } => clone_group_offset(s, &src, &dest, &topic),
        Verb::QueryMsgByOffset {
            topic,
            broker,
            queue,
            offset,
        } => query_by_offset(s, &topic, &broker, queue, offset),
        Verb::ConsumeMessage { topic, count } => consume_message(s, &topic, count),
        Verb::ResendDlqMessage { group, id, count } => resend_dlq(s, &group, id.as_deref(), count),
        Verb::WipeWritePerm { broker } => write_perm(s, &broker, true),
        Verb::AddWritePerm { broker } => write_perm(s, &broker, false),
        Verb::ProducerConnection { group, topic } => {
            let mut rows = Vec::new();
            for (_, addr) in s.masters(None, None)? {
                let mut cmd = RemotingCommand::new_request(rq::GET_PRODUCER_CONNECTION_LIST);
                cmd.set_ext("producerGroup", &group);
                cmd.set_ext("topic", &topic);
                let r = s.call(addr, cmd)?;
                if r.code != rs::SUCCESS {
                    continue;
                }
                for c in body::<ProducerConnection>(&r)?.connection_set {
                    rows.push(vec![
                        c.client_id,
                        c.client_addr,
                        c.language,
                        c.version.to_string(),
                    ]);
                }
            }
            if rows.is_empty() {
                return Err(format!("no producer of group {group} is connected"));
            }
            let value = json!(rows
                .iter()
                .map(|r| json!({"clientId": r[0], "clientAddr": r[1], "language": r[2], "version": r[3]}))
                .collect::<Vec<_>>());
            print(
                s,
                value,
                table(
                    &["#ClientId", "#ClientAddr", "#Language", "#Version"],
                    &rows,
                ),
            );
            Ok(())
        }
        Verb::SendMessage {
            topic,
            body,
            keys,
            tags,
            broker,
            queue,
        } => send_message(s, &topic, &body, keys, tags, broker, queue),
        Verb::QueryMsgByKey { topic, key } => query_by_key(s, &topic, &key),
        Verb::QueryMsgById { id } => query_by_id(s, &id),
        Verb::QueryMsgByUniqueKey { id, topic } => query_by_unique_key(s, &topic, &id),
        Verb::PrintMsg {
            topic,
            begin,
            end,
            print_body,
            max,
        } => print_msg(s, &topic, begin.as_deref(), end.as_deref(), print_body, max),
        Verb::UpdateKvConfig {
            namespace,
            key,
            value,
        } => {
            let mut cmd = RemotingCommand::new_request(rq::PUT_KV_CONFIG);
            cmd.set_ext("namespace", &namespace);
            cmd.set_ext("key", &key);
            cmd.set_ext("value", &value);
            s.namesrv_ok(cmd)?;
            print(
                s,
                json!({"namespace": namespace, "key": key, "value": value}),
                "update kv config in namespace success.".into(),
            );
            Ok(())
        }
        Verb::DeleteKvConfig { namespace, key } => {
            let mut cmd = RemotingCommand::new_request(rq::DELETE_KV_CONFIG);
            cmd.set_ext("namespace", &namespace);
            cmd.set_ext("key", &key);
            s.namesrv_ok(cmd)?;
            print(
                s,
                json!({"namespace": namespace, "key": key, "deleted": true}),
                "delete kv config from namespace success.".into(),
            );
            Ok(())
        }
    }
}

fn cluster_list(s: &Session, only: Option<&str>) -> Result<()> {
    let info = s.cluster_info()?;
    let mut rows = Vec::new();
    let mut values = Vec::new();
    for (cluster, names) in &info.cluster_addr_table {
        if only.is_some_and(|c| c != cluster) {
            continue;
        }
        for name in names {
            let Some(data) = info.broker_addr_table.get(name) else {
                continue;
            };
            for (id, addr) in &data.broker_addrs {
                // A broker that does not answer is still listed, as mqadmin does.
                let runtime = addr
                    .parse()
                    .ok()
                    .and_then(|a| runtime_info(s, a).ok())
                    .unwrap_or_default();
                let get = |k: &str| runtime.get(k).cloned().unwrap_or_default();
                rows.push(vec![
                    cluster.clone(),
                    name.clone(),
                    id.to_string(),
                    addr.clone(),
                    get("brokerVersionDesc"),
                    get("msgPutTotalTodayNow"),
                    get("msgGetTotalTodayNow"),
                ]);
                values.push(json!({"cluster": cluster, "brokerName": name, "brokerId": id,
                    "addr": addr, "version": get("brokerVersionDesc"),
                    "inTotalToday": get("msgPutTotalTodayNow"), "outTotalToday": get("msgGetTotalTodayNow"),
                    "diskRatio": get("commitLogDiskRatio"), "bootTimestamp": get("bootTimestamp")}));
            }
        }
    }
    let header = [
        "#Cluster Name",
        "#Broker Name",
        "#BID",
        "#Addr",
        "#Version",
        "#InTotalToday",
        "#OutTotalToday",
    ];
    print(s, json!(values), table(&header, &rows));
    Ok(())
}

fn queue_offset(s: &Session, addr: SocketAddr, code: i32, topic: &str, q: u32) -> Result<i64> {
    let mut cmd = RemotingCommand::new_request(code);
    cmd.set_ext("topic", topic);
    cmd.set_ext("queueId", q);
    let r = s.expect_ok(addr, cmd)?;
    r.ext_i64("offset").map_err(|e| e.to_string())
}

fn topic_status(s: &Session, topic: &str) -> Result<()> {
    let route = s.route(topic)?;
    let mut rows = Vec::new();
    let mut values = Vec::new();
    for b in &route.broker_datas {
        let Some(addr) = master(&route, &b.broker_name) else {
            continue;
        };
        let mut cmd = RemotingCommand::new_request(rq::GET_TOPIC_STATS_INFO);
        cmd.set_ext("topic", topic);
        let r = s.expect_ok(addr, cmd)?;
        let (_, entries) = decode_offset_table(r.body.as_deref().unwrap_or(b""))?;
        for (q, v) in entries {
            let num = |k: &str| v[k].as_i64().unwrap_or(0);
            let last = num("lastUpdateTimestamp");
            rows.push(vec![
                q.broker_name.clone(),
                q.queue_id.to_string(),
                num("minOffset").to_string(),
                num("maxOffset").to_string(),
                format_time(last),
            ]);
            values.push(json!({"brokerName": q.broker_name, "queueId": q.queue_id,
                "minOffset": num("minOffset"), "maxOffset": num("maxOffset"), "lastUpdateTimestamp": last}));
        }
    }
    print(
        s,
        json!(values),
        table(
            &[
                "#Broker Name",
                "#QID",
                "#Min Offset",
                "#Max Offset",
                "#Last Updated",
            ],
            &rows,
        ),
    );
    Ok(())
}

fn consumer_progress(s: &Session, group: &str, topic: Option<String>) -> Result<()> {
    let mut rows = Vec::new();
    let mut values = Vec::new();
    let (mut total, mut inflight_total) = (0i64, 0i64);
    for (_, addr) in s.masters(None, None)? {
        let mut cmd = RemotingCommand::new_request(rq::GET_CONSUME_STATS);
        cmd.set_ext("consumerGroup", group);
        if let Some(t) = &topic {
            cmd.set_ext("topic", t);
        }
        let r = s.call(addr, cmd)?;
        if r.code != rs::SUCCESS {
            continue; // the group has nothing on this broker
        }
        let (_, mut entries) = decode_offset_table(r.body.as_deref().unwrap_or(b""))?;
        entries.sort_by(|a, b| (&a.0.topic, a.0.queue_id).cmp(&(&b.0.topic, b.0.queue_id)));
        for (q, v) in entries {
            let num = |k: &str| v[k].as_i64().unwrap_or(0);
            let (broker, consumer) = (num("brokerOffset"), num("consumerOffset"));
            let diff = (broker - consumer).max(0);
            let inflight = (num("pullOffset") - consumer).max(0);
            let last = num("lastTimestamp");
            total += diff;
            inflight_total += inflight;
            rows.push(vec![
                q.topic.clone(),
                q.broker_name.clone(),
                q.queue_id.to_string(),
                broker.to_string(),
                consumer.to_string(),
                diff.to_string(),
                inflight.to_string(),
                if last > 0 {
                    format_time(last)
                } else {
                    "N/A".into()
                },
            ]);
            values.push(
                json!({"topic": q.topic, "brokerName": q.broker_name, "queueId": q.queue_id,
                "brokerOffset": broker, "consumerOffset": consumer, "diff": diff,
                "inflight": inflight, "lastTimestamp": last}),
            );
        }
    }
    if rows.is_empty() {
        return Err(format!(
            "group {group} has no consume stats: no broker holds an offset or a subscription of it"
        ));
    }
    let header = [
        "#Topic",
        "#Broker Name",
        "#QID",
        "#Broker Offset",
        "#Consumer Offset",
        "#Diff",
        "#Inflight",
        "#LastTime",
    ];
    print(
        s,
        json!({"group": group, "queues": values, "diffTotal": total, "inflightTotal": inflight_total}),
        format!(
            "{}\n\nConsume Diff Total: {total}\nConsume Inflight Total: {inflight_total}",
            table(&header, &rows)
        ),
    );
    Ok(())
}

/// Groups that clients never name: the brokers' and tools' own.
fn is_system_group(g: &str) -> bool {
    const PREFIXES: &[&str] = &["CID_RMQ_SYS_", "CID_ONSAPI_", "CID_ONS-HTTP-PROXY"];
    const NAMES: &[&str] = &[
        "TOOLS_CONSUMER",
        "FILTERSRV_CONSUMER",
        "SELF_TEST_C_GROUP",
        "CID_SYS_RMQ_TRANS",
        "rocketcore_admin_reader",
    ];
    NAMES.contains(&g) || PREFIXES.iter().any(|p| g.starts_with(p))
}

/// mqadmin's `consumerProgress` without -g: each group of every master
/// with its online clients and total lag.
fn group_list(s: &Session) -> Result<()> {
    let masters = s.masters(None, None)?;
    let mut groups = std::collections::BTreeSet::new();
    for (_, addr) in &masters {
        let r = s.expect_ok(
            *addr,
            RemotingCommand::new_request(rq::GET_ALL_SUBSCRIPTIONGROUP_CONFIG),
        )?;
        let wrapper: crate::protocol::SubscriptionGroupWrapper = body(&r)?;
        groups.extend(
            wrapper
                .subscription_group_table
                .into_keys()
                .filter(|g| !is_system_group(g)),
        );
    }
    let mut rows = Vec::new();
    let mut values = Vec::new();
    for group in groups {
        let (mut count, mut version, mut kind, mut model) =
            (0usize, String::new(), String::new(), String::new());
        let mut diff = 0i64;
        let mut seen = false;
        for (_, addr) in &masters {
            let mut cmd = RemotingCommand::new_request(rq::GET_CONSUMER_CONNECTION_LIST);
            cmd.set_ext("consumerGroup", &group);
            let r = s.call(*addr, cmd)?;
            if r.code == rs::SUCCESS && count == 0 {
                let cc: ConsumerConnection = body(&r)?;
                count = cc.connection_set.len();
                version = cc
                    .connection_set
                    .iter()
                    .map(|c| c.version)
                    .min()
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                kind = cc.consume_type;
                model = cc.message_model;
            }
            let mut cmd = RemotingCommand::new_request(rq::GET_CONSUME_STATS);
            cmd.set_ext("consumerGroup", &group);
            let r = s.call(*addr, cmd)?;
            if r.code == rs::SUCCESS {
                seen = true;
                let (_, entries) = decode_offset_table(r.body.as_deref().unwrap_or(b""))?;
                for (_, v) in entries {
                    let num = |k: &str| v[k].as_i64().unwrap_or(0);
                    diff += (num("brokerOffset") - num("consumerOffset")).max(0);
                }
            }
        }
        let state = if count == 0 {
            "OFFLINE".to_string()
        } else {
            count.to_string()
        };
        rows.push(vec![
            group.clone(),
            state,
            version.clone(),
            kind.clone(),
            model.clone(),
            "0".into(),
            diff.to_string(),
        ]);
        values.push(
            json!({"group": group, "count": count, "version": version, "consumeType": kind,
            "messageModel": model, "consumeTps": 0, "diffTotal": diff, "hasOffsets": seen}),
        );
    }
    print(
        s,
        json!(values),
        table(
            &[
                "#Group",
                "#Count",
                "#Version",
                "#Type",
                "#Model",
                "#TPS",
                "#Diff Total",
            ],
            &rows,
        ),
    );
    Ok(())
}

/// The master address of `broker` in a route.
fn master(route: &crate::protocol::TopicRouteData, broker: &str) -> Option<SocketAddr> {
    route
        .broker_datas
        .iter()
        .find(|b| b.broker_name == broker)
        .and_then(|b| b.broker_addrs.get(&0))
        .and_then(|a| a.parse().ok())
}

/// Each queue of `topic` with its master's address.
fn queues(s: &Session, topic: &str) -> Result<Vec<(String, SocketAddr, u32)>> {
    let route = s.route(topic)?;
    let mut out = Vec::new();
    for qd in &route.queue_datas {
        let Some(addr) = master(&route, &qd.broker_name) else {
            continue;
        };
        for q in 0..qd.read_queue_nums.max(qd.write_queue_nums) {
            out.push((qd.broker_name.clone(), addr, q));
        }
    }
    Ok(out)
}

fn commit_offset(
    s: &Session,
    addr: SocketAddr,
    group: &str,
    topic: &str,
    q: u32,
    offset: i64,
) -> Result<()> {
    let mut cmd = RemotingCommand::new_request(rq::UPDATE_CONSUMER_OFFSET);
    cmd.set_ext("consumerGroup", group);
    cmd.set_ext("topic", topic);
    cmd.set_ext("queueId", q);
    cmd.set_ext("commitOffset", offset);
    s.expect_ok(addr, cmd).map(drop)
}

/// `now`, epoch millis, or mqadmin's yyyy-MM-dd#HH:mm:ss:SSS (read as UTC).
fn parse_time(text: &str) -> Result<i64> {
    if text == "now" {
        return Ok(crate::protocol::now_ms());
    }
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || format!("{text:?}: expected now, epoch millis or yyyy-MM-dd#HH:mm:ss:SSS");
    let (date, time) = text.split_once('#').ok_or_else(bad)?;
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    let (&[y, mo, day], &[h, mi, sec, ms]) = (&d[..], &t[..]) else {
        return Err(bad());
    };
    if !(1..=12).contains(&mo)
        || !(1..=31).contains(&day)
        || h > 23
        || mi > 59
        || sec > 59
        || ms > 999
    {
        return Err(bad());
    }
    let days = crate::protocol::civil::days_from_civil(y, mo, day);
    Ok((((days * 24 + h) * 60 + mi) * 60 + sec) * 1000 + ms)
}

fn reset_offset_by_time(s: &Session, group: &str, topic: &str, when: &str) -> Result<()> {
    let ts = parse_time(when)?;
    let route = s.route(topic)?;
    let mut rows = Vec::new();
    let mut values = Vec::new();
    let mut add = |broker: &str, q: i64, offset: i64| {
        rows.push(vec![broker.to_string(), q.to_string(), offset.to_string()]);
        values.push(json!({"brokerName": broker, "queueId": q, "offset": offset}));
    };
    for b in &route.broker_datas {
        let Some(addr) = master(&route, &b.broker_name) else {
            continue;
        };
        let mut cmd = RemotingCommand::new_request(rq::INVOKE_BROKER_TO_RESET_OFFSET);
        cmd.set_ext("topic", topic);
        cmd.set_ext("group", group);
        cmd.set_ext("timestamp", ts);
        cmd.set_ext("isForce", true);
        cmd.set_ext("queueId", -1);
        let r = s.call(addr, cmd)?;
        if r.code == rs::SUCCESS {
            let (_, mut entries) = decode_offset_table(r.body.as_deref().unwrap_or(b""))?;
            entries.sort_by_key(|e| e.0.queue_id);
            for (q, v) in entries {
                add(&q.broker_name, q.queue_id as i64, v.as_i64().unwrap_or(0));
            }
            continue;
        }
        // A broker that cannot reset itself (Java's, with no consumer
        // online): commit the offsets found by time, as mqadmin does then.
        if r.code != rs::CONSUMER_NOT_ONLINE && r.code != rs::REQUEST_CODE_NOT_SUPPORTED {
            return Err(format!(
                "{addr}: reset answered {} {}",
                r.code,
                r.remark.as_deref().unwrap_or("")
            ));
        }
        for (broker, addr, q) in queues(s, topic)?
            .into_iter()
            .filter(|q| q.0 == b.broker_name)
        {
            let mut cmd = RemotingCommand::new_request(rq::SEARCH_OFFSET_BY_TIMESTAMP);
            cmd.set_ext("topic", topic);
            cmd.set_ext("queueId", q);
            cmd.set_ext("timestamp", ts);
            let r = s.expect_ok(addr, cmd)?;
            let offset = r.ext_i64("offset").map_err(|e| e.to_string())?;
            commit_offset(s, addr, group, topic, q, offset)?;
            add(&broker, q as i64, offset);
        }
    }
    print(
        s,
        json!({"group": group, "topic": topic, "timestamp": ts, "queues": values}),
        table(&["#brokerName", "#queueId", "#offset"], &rows),
    );
    Ok(())
}

/// Millis as mqadmin prints times (yyyy-MM-dd HH:mm:ss,SSS), in UTC.
fn format_time(ms: i64) -> String {
    if ms <= 0 {
        return String::new();
    }
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (year, month, day) = crate::protocol::civil::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02},{:03}",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

fn clone_group_offset(s: &Session, src: &str, dest: &str, topic: &str) -> Result<()> {
    let mut copied = 0;
    for (_, addr, q) in queues(s, topic)? {
        let mut cmd = RemotingCommand::new_request(rq::QUERY_CONSUMER_OFFSET);
        cmd.set_ext("consumerGroup", src);
        cmd.set_ext("topic", topic);
        cmd.set_ext("queueId", q);
        let r = s.call(addr, cmd)?;
        if r.code != rs::SUCCESS {
            continue; // nothing committed on this queue
        }
        let offset = r.ext_i64("offset").map_err(|e| e.to_string())?;
        commit_offset(s, addr, dest, topic, q, offset)?;
        copied += 1;
    }
    print(
        s,
        json!({"srcGroup": src, "destGroup": dest, "topic": topic, "queues": copied}),
        format!("clone group offset success. srcGroup[{src}], destGroup=[{dest}], topic[{topic}]"),
    );
    Ok(())
}

/// Up to `max` records of one queue from `offset`, without committing.
fn pull_at(
    s: &Session,
    addr: SocketAddr,
    topic: &str,
    q: u32,
    offset: i64,
    max: usize,
) -> Result<Option<bytes::Bytes>> {
    let mut cmd = RemotingCommand::new_request(rq::PULL_MESSAGE);
    cmd.set_ext("consumerGroup", "rocketcore_admin_reader");
    cmd.set_ext("topic", topic);
    cmd.set_ext("queueId", q);
    cmd.set_ext("queueOffset", offset);
    cmd.set_ext("maxMsgNums", max);
    // Subscription carried here; no commit, no holding.
    cmd.set_ext("sysFlag", 4);
    cmd.set_ext("commitOffset", 0);
    cmd.set_ext("suspendTimeoutMillis", 0);
    cmd.set_ext("subscription", "*");
    cmd.set_ext("subVersion", 0);
    let r = s.call(addr, cmd)?;
    match r.code {
        rs::SUCCESS => Ok(r.body),
        rs::PULL_NOT_FOUND | rs::PULL_RETRY_IMMEDIATELY | rs::PULL_OFFSET_MOVED => Ok(None),
        code => Err(format!(
            "{addr}: pull answered {code} {}",
            r.remark.as_deref().unwrap_or("")
        )),
    }
}

fn query_by_offset(s: &Session, topic: &str, broker: &str, q: i32, offset: i64) -> Result<()> {
    let (_, addr, q) = queues(s, topic)?
        .into_iter()
        .find(|(b, _, qid)| b == broker && *qid as i64 == q as i64)
        .ok_or_else(|| format!("topic {topic} has no queue {q} on broker {broker}"))?;
    let body = pull_at(s, addr, topic, q, offset, 1)?
        .ok_or_else(|| format!("no message at offset {offset} of queue {q}"))?;
    let recs = records(&body)?;
    let rec = recs
        .iter()
        .find(|r| r.queue_offset() == offset)
        .ok_or_else(|| format!("no message at offset {offset} of queue {q}"))?;
    let (value, text) = describe_record(rec, &addr.to_string());
    print(s, value, text);
    Ok(())
}

fn consume_message(s: &Session, topic: &str, count: usize) -> Result<()> {
    let mut values = Vec::new();
    let mut texts = Vec::new();
    'queues: for (_, addr, q) in queues(s, topic)? {
        let mut offset = 0;
        while values.len() < count {
            let Some(body) = pull_at(s, addr, topic, q, offset, 32)? else {
                continue 'queues;
            };
            let recs = records(&body)?;
            let Some(last) = recs.last() else {
                continue 'queues;
            };
            offset = last.queue_offset() + 1;
            for rec in recs.iter().take(count - values.len()) {
                let (v, t) = describe_record(rec, &addr.to_string());
                values.push(v);
                texts.push(t);
            }
        }
        break;
    }
    print(s, json!(values), texts.join("\n\n"));
    Ok(())
}

/// Properties the broker set for the retry and dead-letter path; a
/// re-sent message starts that path afresh.
const DLQ_PATH_PROPS: &[&str] = &[
    "DLQ_ORIGIN_TOPIC",
    "DLQ_ORIGIN_MESSAGE_ID",
    "RETRY_TOPIC",
    "REAL_TOPIC",
    "REAL_QID",
    "DELAY",
    "WAIT",
    "__CRC32#",
];

fn resend_dlq(s: &Session, group: &str, only: Option<&str>, max: usize) -> Result<()> {
    let dlq = format!("%DLQ%{group}");
    let retry = format!("%RETRY%{group}");
    let mut rows = Vec::new();
    let mut values = Vec::new();
    'queues: for (_, addr, q) in queues(s, &dlq)? {
        let mut offset = 0;
        loop {
            let Some(body) = pull_at(s, addr, &dlq, q, offset, 32)? else {
                continue 'queues;
            };
            let recs = records(&body)?;
            let Some(last) = recs.last() else {
                continue 'queues;
            };
            offset = last.queue_offset() + 1;
            for rec in &recs {
                if rows.len() >= max {
                    break 'queues;
                }
                let props = rec.properties();
                let id = properties::get_str(props, "UNIQ_KEY").unwrap_or_default();
                let origin_id = properties::get_str(props, "DLQ_ORIGIN_MESSAGE_ID").unwrap_or(id);
                if only.is_some_and(|want| want != id && want != origin_id) {
                    continue;
                }
                let origin = properties::get_str(props, "DLQ_ORIGIN_TOPIC")
                    .or(properties::get_str(props, "RETRY_TOPIC"))
                    .ok_or_else(|| format!("dead letter {id} does not name its original topic"))?
                    .to_string();
                let mut out = Vec::with_capacity(props.len());
                properties::copy_without(props, &mut out, DLQ_PATH_PROPS);
                // Clients consuming the retry topic restore the topic name
                // from RETRY_TOPIC.
                properties::push(&mut out, "RETRY_TOPIC", &origin);
                properties::push(&mut out, "WAIT", "true");
                // Where the dead letter lives serves the group's retry topic.
                let r = send_to(s, addr, &retry, -1, rec.body(), &out)?;
                let sent = r.ext_str("msgId").unwrap_or_default().to_string();
                rows.push(vec![id.to_string(), origin.clone(), sent.clone()]);
                values.push(json!({"msgId": id, "originTopic": origin, "resentAs": sent}));
            }
        }
    }
    if let Some(want) = only {
        if rows.is_empty() {
            return Err(format!("no dead letter with message id {want} in {dlq}"));
        }
    }
    print(
        s,
        json!(values),
        table(
            &[
                "#Message ID",
                "#Original Topic",
                "#Resent As (offset msgId)",
            ],
            &rows,
        ),
    );
    Ok(())
}

/// SEND_MESSAGE of `body` with raw properties to `topic` on `addr`
/// (`queue` -1: the broker chooses).
fn send_to(
    s: &Session,
    addr: SocketAddr,
    topic: &str,
    queue: i32,
    body: &[u8],
    props: &[u8],
) -> Result<RemotingCommand> {
    let mut cmd = RemotingCommand::new_request(rq::SEND_MESSAGE);
    cmd.set_ext("producerGroup", "rocketcore_admin");
    cmd.set_ext("topic", topic);
    cmd.set_ext("defaultTopic", "TBW102");
    cmd.set_ext("defaultTopicQueueNums", 4);
    cmd.set_ext("queueId", queue);
    cmd.set_ext("sysFlag", 0);
    cmd.set_ext("bornTimestamp", crate::protocol::now_ms());
    cmd.set_ext("flag", 0);
    cmd.set_ext("properties", String::from_utf8_lossy(props));
    cmd.set_ext("reconsumeTimes", 0);
    cmd.set_ext("unitMode", false);
    cmd.set_ext("batch", false);
    s.expect_ok(addr, cmd.with_body(body.to_vec()))
}

fn write_perm(s: &Session, broker: &str, wipe: bool) -> Result<()> {
    let code = if wipe {
        rq::WIPE_WRITE_PERM_OF_BROKER
    } else {
        rq::ADD_WRITE_PERM_OF_BROKER
    };
    let mut cmd = RemotingCommand::new_request(code);
    cmd.set_ext("brokerName", broker);
    let r = s.namesrv_ok(cmd)?;
    let key = if wipe {
        "wipeTopicCount"
    } else {
        "addTopicCount"
    };
    let count = r.ext_i64(key).unwrap_or(0);
    let verb = if wipe { "wipe" } else { "add" };
    print(
        s,
        json!({"brokerName": broker, key: count}),
        format!(
            "{verb} write perm of broker[{broker}] in name server success, topic count: {count}"
        ),
    );
    Ok(())
}

/// The first master that has consumers of `group` online, with its
/// GET_CONSUMER_CONNECTION_LIST answer.
fn group_connections(s: &Session, group: &str) -> Result<(SocketAddr, RemotingCommand)> {
    for (_, addr) in s.masters(None, None)? {
        let mut cmd = RemotingCommand::new_request(rq::GET_CONSUMER_CONNECTION_LIST);
        cmd.set_ext("consumerGroup", group);
        let r = s.call(addr, cmd)?;
        if r.code == rs::SUCCESS {
            return Ok((addr, r));
        }
    }
    Err(format!("no consumer of group {group} is connected"))
}

fn consumer_connection(s: &Session, group: &str) -> Result<()> {
    let (_, r) = group_connections(s, group)?;
    let cc: ConsumerConnection = body(&r)?;
    let rows: Vec<Vec<String>> = cc
        .connection_set
        .iter()
        .map(|c| {
            vec![
                c.client_id.clone(),
                c.client_addr.clone(),
                c.language.clone(),
                c.version.to_string(),
            ]
        })
        .collect();
    let raw: Value =
        serde_json::from_slice(r.body.as_deref().unwrap_or(b"{}")).unwrap_or(Value::Null);
    let text = format!(
        "{}\n\nConsumeType: {}\nMessageModel: {}\nConsumeFromWhere: {}",
        table(
            &["#ClientId", "#ClientAddr", "#Language", "#Version"],
            &rows
        ),
        cc.consume_type,
        cc.message_model,
        cc.consume_from_where
    );
    print(s, raw, text);
    Ok(())
}

fn broker_consume_stats(s: &Session, broker: SocketAddr, order: bool) -> Result<()> {
    let mut cmd = RemotingCommand::new_request(rq::GET_BROKER_CONSUME_STATS);
    cmd.set_ext("isOrder", order);
    let r = s.expect_ok(broker, cmd)?;
    let list = crate::protocol::object_keyed::parse_lenient(r.body.as_deref().unwrap_or(b"{}"))?;
    let mut rows = Vec::new();
    let mut values = Vec::new();
    for by_group in list["consumeStatsList"].as_array().into_iter().flatten() {
        for (group, stats) in by_group.as_object().into_iter().flatten() {
            for cs in stats.as_array().into_iter().flatten() {
                for (key, o) in cs["offsetTable"].as_object().into_iter().flatten() {
                    let q: crate::protocol::message_queue::MessageQueue = serde_json::from_str(key)
                        .map_err(|e| format!("bad queue key {key}: {e}"))?;
                    let num = |k: &str| o[k].as_i64().unwrap_or(0);
                    let (b, c) = (num("brokerOffset"), num("consumerOffset"));
                    let last = num("lastTimestamp");
                    rows.push(vec![
                        q.topic.clone(),
                        group.clone(),
                        q.broker_name.clone(),
                        q.queue_id.to_string(),
                        b.to_string(),
                        c.to_string(),
                        (b - c).max(0).to_string(),
                        if last > 0 {
                            format_time(last)
                        } else {
                            "N/A".into()
                        },
                    ]);
                    values.push(json!({"topic": q.topic, "group": group, "brokerName": q.broker_name,
                        "queueId": q.queue_id, "brokerOffset": b, "consumerOffset": c, "diff": (b - c).max(0),
                        "lastTimestamp": last}));
                }
            }
        }
    }
    let total = list["totalDiff"].as_i64().unwrap_or(0);
    let header = [
        "#Topic",
        "#Group",
        "#Broker Name",
        "#QID",
        "#Broker Offset",
        "#Consumer Offset",
        "#Diff",
        "#LastTime",
    ];
    print(
        s,
        json!({"brokerAddr": list["brokerAddr"], "queues": values, "totalDiff": total,
            "totalInflightDiff": list["totalInflightDiff"]}),
        format!("{}\n\nDiff Total: {total}", table(&header, &rows)),
    );
    Ok(())
}

fn consumer_status(s: &Session, group: &str, only: Option<&str>, jstack: bool) -> Result<()> {
    let (addr, r) = group_connections(s, group)?;
    let cc: ConsumerConnection = body(&r)?;
    let mut rows = Vec::new();
    let mut values = Vec::new();
    for (i, c) in cc
        .connection_set
        .iter()
        .filter(|c| only.is_none_or(|o| o == c.client_id))
        .enumerate()
    {
        let mut cmd = RemotingCommand::new_request(rq::GET_CONSUMER_RUNNING_INFO);
        cmd.set_ext("consumerGroup", group);
        cmd.set_ext("clientId", &c.client_id);
        cmd.set_ext("jstackEnable", jstack);
        let r = s.expect_ok(addr, cmd)?;
        let info =
            crate::protocol::object_keyed::parse_lenient(r.body.as_deref().unwrap_or(b"{}"))?;
        let count = |k: &str| match &info[k] {
            Value::Object(m) => m.len(),
            Value::Array(a) => a.len(),
            _ => 0,
        };
        rows.push(vec![
            format!("{:03}", i + 1),
            c.client_id.clone(),
            c.version.to_string(),
            count("subscriptionSet").to_string(),
            count("mqTable").to_string(),
        ]);
        values.push(json!({"clientId": c.client_id, "version": c.version, "runningInfo": info}));
    }
    if rows.is_empty() {
        return Err(match only {
            Some(id) => format!("client {id} is not a connected consumer of group {group}"),
            None => format!("no consumer of group {group} is connected"),
        });
    }
    print(
        s,
        json!(values),
        table(
            &[
                "#Index",
                "#ClientId",
                "#Version",
                "#Subscriptions",
                "#Queues",
            ],
            &rows,
        ),
    );
    Ok(())
}

fn send_message(
    s: &Session,
    topic: &str,
    text: &str,
    keys: Option<String>,
    tags: Option<String>,
    broker: Option<String>,
    queue: Option<i32>,
) -> Result<()> {
    // A topic without a route is sent through TBW102's, which makes the
    // broker create it, as a client's first send does.
    let route = s
        .route(topic)
        .or_else(|e| s.route("TBW102").map_err(|_| e))?;
    let qd = route
        .queue_datas
        .iter()
        .find(|q| broker.as_deref().is_none_or(|b| q.broker_name == b))
        .ok_or_else(|| format!("topic {topic} has no queue on broker {broker:?}"))?;
    let addr = master(&route, &qd.broker_name)
        .ok_or_else(|| format!("broker {} has no master", qd.broker_name))?;
    let mut props = Vec::new();
    if let Some(k) = &keys {
        properties::push(&mut props, "KEYS", k);
    }
    if let Some(t) = &tags {
        properties::push(&mut props, "TAGS", t);
    }
    properties::push(&mut props, "WAIT", "true");
    let r = send_to(s, addr, topic, queue.unwrap_or(-1), text.as_bytes(), &props)?;
    let id = r.ext_str("msgId").unwrap_or_default().to_string();
    let qid = r.ext_str("queueId").unwrap_or_default().to_string();
    let offset = r.ext_str("queueOffset").unwrap_or_default().to_string();
    print(
        s,
        json!({"brokerName": qd.broker_name, "queueId": qid, "queueOffset": offset,
            "sendResult": "SEND_OK", "msgId": id}),
        table(
            &["#Broker Name", "#QID", "#Send Result", "#MsgId"],
            &[vec![qd.broker_name.clone(), qid, "SEND_OK".into(), id]],
        ),
    );
    Ok(())
}

/// A stored record as mqadmin's printMsg shows it.
fn describe_record(rec: &RecordView<'_>, store: &str) -> (Value, String) {
    let props: BTreeMap<String, String> = properties::iter(rec.properties())
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect();
    let topic = String::from_utf8_lossy(rec.topic()).into_owned();
    let body = String::from_utf8_lossy(rec.body()).into_owned();
    let get = |k: &str| props.get(k).cloned().unwrap_or_default();
    let value = json!({
        "topic": topic, "tags": get("TAGS"), "keys": get("KEYS"),
        "queueId": rec.queue_id(), "queueOffset": rec.queue_offset(),
        "commitLogOffset": rec.physical_offset(), "reconsumeTimes": rec.reconsume_times(),
        "bornTimestamp": rec.born_timestamp_ms(), "storeTimestamp": rec.store_timestamp_ms(),
        "bornHost": rec.born_host().to_string(), "storeHost": store,
        "properties": props, "body": body,
    });
    let text = [
        ("Topic", topic),
        ("Tags", format!("[{}]", get("TAGS"))),
        ("Keys", format!("[{}]", get("KEYS"))),
        ("Queue ID", rec.queue_id().to_string()),
        ("Queue Offset", rec.queue_offset().to_string()),
        ("CommitLog Offset", rec.physical_offset().to_string()),
        ("Reconsume Times", rec.reconsume_times().to_string()),
        ("Born Timestamp", rec.born_timestamp_ms().to_string()),
        ("Store Timestamp", rec.store_timestamp_ms().to_string()),
        ("Born Host", rec.born_host().to_string()),
        ("Store Host", store.to_string()),
        ("Properties", format!("{props:?}")),
        ("Message Body", body),
    ]
    .iter()
    .map(|(k, v)| format!("{k:<20}: {v}"))
    .collect::<Vec<_>>()
    .join("\n");
    (value, text)
}

fn records(body: &[u8]) -> Result<Vec<RecordView<'_>>> {
    rocketcore_storage::record::split(body).map_err(|e| format!("bad record in reply: {e}"))
}

/// QUERY_MESSAGE for `key` on every master of `topic`: each match with
/// the address of the broker that stores it.
fn query_index(
    s: &Session,
    topic: &str,
    key: &str,
    unique: bool,
) -> Result<Vec<(Value, String, i32, i64)>> {
    let route = s.route(topic)?;
    let mut found = Vec::new();
    for b in &route.broker_datas {
        let Some(addr) = master(&route, &b.broker_name) else {
            continue;
        };
        let mut cmd = RemotingCommand::new_request(rq::QUERY_MESSAGE);
        cmd.set_ext("topic", topic);
        cmd.set_ext("key", key);
        cmd.set_ext("maxNum", 64);
        cmd.set_ext("beginTimestamp", 0);
        cmd.set_ext("endTimestamp", i64::MAX);
        if unique {
            cmd.set_ext("_UNIQUE_KEY_QUERY", true);
        }
        let r = s.call(addr, cmd)?;
        if r.code != rs::SUCCESS {
            continue;
        }
        for rec in records(r.body.as_deref().unwrap_or(b""))? {
            let id = properties::get_str(rec.properties(), "UNIQ_KEY")
                .unwrap_or_default()
                .to_string();
            // The index files KEYS and UNIQ_KEY alike (and keeps hashes).
            if unique && id != key {
                continue;
            }
            let value = describe_record(&rec, &addr.to_string()).0;
            found.push((value, id, rec.queue_id(), rec.queue_offset()));
        }
    }
    Ok(found)
}

fn query_by_key(s: &Session, topic: &str, key: &str) -> Result<()> {
    let found = query_index(s, topic, key, false)?;
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|(_, id, q, o)| vec![id.clone(), q.to_string(), o.to_string()])
        .collect();
    let values: Vec<Value> = found.into_iter().map(|f| f.0).collect();
    print(
        s,
        json!(values),
        table(&["#Message ID", "#QID", "#Offset"], &rows),
    );
    Ok(())
}

fn query_by_unique_key(s: &Session, topic: &str, id: &str) -> Result<()> {
    let found = query_index(s, topic, id, true)?;
    if found.is_empty() {
        return Err(format!("no message of topic {topic} has message id {id}"));
    }
    let mut texts = Vec::new();
    let mut values = Vec::new();
    for (value, ..) in found {
        texts.push(value_text(&value));
        values.push(value);
    }
    print(s, json!(values), texts.join("\n\n"));
    Ok(())
}

/// mqadmin's message block for a record described by `describe_record`.
fn value_text(v: &Value) -> String {
    let field = |k: &str| match &v[k] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    [
        ("Topic", "topic"),
        ("Tags", "tags"),
        ("Keys", "keys"),
        ("Queue ID", "queueId"),
        ("Queue Offset", "queueOffset"),
        ("CommitLog Offset", "commitLogOffset"),
        ("Reconsume Times", "reconsumeTimes"),
        ("Born Timestamp", "bornTimestamp"),
        ("Store Timestamp", "storeTimestamp"),
        ("Born Host", "bornHost"),
        ("Store Host", "storeHost"),
        ("Properties", "properties"),
        ("Message Body", "body"),
    ]
    .iter()
    .map(|(label, k)| format!("{label:<20}: {}", field(k)))
    .collect::<Vec<_>>()
    .join("\n")
}

fn print_msg(
    s: &Session,
    topic: &str,
    begin: Option<&str>,
    end: Option<&str>,
    print_body: bool,
    max: usize,
) -> Result<()> {
    let begin = begin.map(parse_time).transpose()?;
    let end = end.map(parse_time).transpose()?;
    let mut values = Vec::new();
    let mut texts = Vec::new();
    'queues: for (_, addr, q) in queues(s, topic)? {
        let offset_at = |code: i32, ts: Option<i64>| -> Result<i64> {
            match ts {
                Some(ts) => {
                    let mut cmd = RemotingCommand::new_request(rq::SEARCH_OFFSET_BY_TIMESTAMP);
                    cmd.set_ext("topic", topic);
                    cmd.set_ext("queueId", q);
                    cmd.set_ext("timestamp", ts);
                    let r = s.expect_ok(addr, cmd)?;
                    r.ext_i64("offset").map_err(|e| e.to_string())
                }
                None => queue_offset(s, addr, code, topic, q),
            }
        };
        let min = queue_offset(s, addr, rq::GET_MIN_OFFSET, topic, q)?;
        let max_offset = queue_offset(s, addr, rq::GET_MAX_OFFSET, topic, q)?;
        let mut offset = offset_at(rq::GET_MIN_OFFSET, begin)?;
        texts.push(format!(
            "minOffset={min}, maxOffset={max_offset}, queueId={q}"
        ));
        while offset < max_offset && values.len() < max {
            let Some(body) = pull_at(s, addr, topic, q, offset, 32)? else {
                break;
            };
            let recs = records(&body)?;
            let Some(last) = recs.last() else {
                break;
            };
            offset = last.queue_offset() + 1;
            for rec in &recs {
                if end.is_some_and(|e| rec.store_timestamp_ms() > e) {
                    continue 'queues;
                }
                if values.len() >= max {
                    break 'queues;
                }
                let (mut v, _) = describe_record(rec, &addr.to_string());
                let id = properties::get_str(rec.properties(), "UNIQ_KEY").unwrap_or_default();
                texts.push(match print_body {
                    true => format!("MSGID: {id} {} BODY: {}", v["topic"], v["body"]),
                    false => format!("MSGID: {id} {}", v["topic"]),
                });
                if !print_body {
                    v["body"] = Value::Null;
                }
                values.push(v);
            }
        }
    }
    print(s, json!(values), texts.join("\n"));
    Ok(())
}

/// An offset message id: 16 hex digits of the store host (IPv4 and port),
/// then 16 of the commit-log offset.
fn parse_offset_msg_id(id: &str) -> Result<(SocketAddr, i64)> {
    let bad = || format!("{id:?} is not an offset message id (32 hex digits)");
    if id.len() != 32 || !id.is_ascii() {
        return Err(bad());
    }
    let ip = u32::from_str_radix(&id[0..8], 16).map_err(|_| bad())?;
    let port = u32::from_str_radix(&id[8..16], 16).map_err(|_| bad())?;
    let offset = u64::from_str_radix(&id[16..32], 16).map_err(|_| bad())?;
    let port = u16::try_from(port).map_err(|_| bad())?;
    Ok((
        SocketAddr::new(std::net::Ipv4Addr::from(ip).into(), port),
        offset as i64,
    ))
}

fn query_by_id(s: &Session, id: &str) -> Result<()> {
    let (addr, offset) = parse_offset_msg_id(id)?;
    let mut cmd = RemotingCommand::new_request(rq::VIEW_MESSAGE_BY_ID);
    cmd.set_ext("offset", offset);
    let r = s.expect_ok(addr, cmd)?;
    let body = r.body.as_deref().unwrap_or(b"");
    let recs = records(body)?;
    let rec = recs.first().ok_or("the broker returned no message")?;
    let (value, text) = describe_record(rec, &addr.to_string());
    print(s, value, format!("{:<20}: {id}\n{text}", "OffsetID"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_mqadmin_writes_them() {
        assert_eq!(parse_time("1700000000000").unwrap(), 1_700_000_000_000);
        // 2023-11-14T22:13:20.000Z is 1700000000000.
        assert_eq!(
            parse_time("2023-11-14#22:13:20:000").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(parse_time("1970-01-01#00:00:00:001").unwrap(), 1);
        assert_eq!(
            parse_time("2024-02-29#00:00:00:000").unwrap(),
            1_709_164_800_000
        );
        for bad in [
            "yesterday",
            "2024-13-01#00:00:00:000",
            "2024-01-01",
            "2024-01-01#25:00:00:000",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_print_as_mqadmin_prints_them() {
        assert_eq!(format_time(1_700_000_000_000), "2023-11-14 22:13:20,000");
        assert_eq!(format_time(1_709_164_800_123), "2024-02-29 00:00:00,123");
        assert_eq!(format_time(0), "");
        for ms in [1, 86_399_999, 951_782_400_000, 4_102_444_800_000] {
            let t = format_time(ms).replacen(' ', "#", 1).replace(',', ":");
            assert_eq!(parse_time(&t).unwrap(), ms, "{t}");
        }
    }

    #[test]
    fn offset_message_ids_name_the_broker_and_offset() {
        let (addr, off) = parse_offset_msg_id("7F00000100002A9F0000000000001A2B").unwrap();
        assert_eq!(addr, "127.0.0.1:10911".parse().unwrap());
        assert_eq!(off, 0x1A2B);
        assert!(parse_offset_msg_id("xyz").is_err());
        assert!(parse_offset_msg_id("7F0000010001FFFF0000000000001A2B").is_err());
    }
}

//! ACL 1.0 as RocketMQ ≤ 5.3.2 runs it from `plain_acl.yml`: accounts with
//! a secret, per-topic and per-group permissions and address white lists,
//! and the check of one request against them (`PlainPermissionManager`'s
//! order: global white list, account, account white list, signature,
//! permissions).

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Deserialize;

use super::addr::AddrPattern;
use super::signature;
use crate::broker::meta::RETRY_GROUP_TOPIC_PREFIX;
use crate::remoting::codes::request_code as rc;
use crate::remoting::{ExtFields, RemotingCommand};

/// Java's `Permission` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Perm(u8);

impl Perm {
    pub const DENY: Perm = Perm(1);
    pub const ANY: Perm = Perm(2);
    pub const PUB: Perm = Perm(4);
    pub const SUB: Perm = Perm(8);

    pub fn parse(text: &str) -> Result<Perm, String> {
        match text.trim() {
            "DENY" => Ok(Perm::DENY),
            "ANY" => Ok(Perm::ANY),
            "PUB" => Ok(Perm::PUB),
            "SUB" => Ok(Perm::SUB),
            "PUB|SUB" | "SUB|PUB" => Ok(Perm(Perm::PUB.0 | Perm::SUB.0)),
            other => Err(format!(
                "permission {other:?}: expected DENY, PUB, SUB or PUB|SUB"
            )),
        }
    }

    /// Whether holding `self` grants `needed` (DENY wins; ANY is PUB or SUB).
    fn grants(self, needed: Perm) -> bool {
        if self.0 & Perm::DENY.0 != 0 {
            return false;
        }
        if needed.0 & Perm::ANY.0 != 0 {
            return self.0 & (Perm::PUB.0 | Perm::SUB.0) != 0;
        }
        self.0 & needed.0 != 0
    }

    fn name(self) -> &'static str {
        match self.0 {
            1 => "DENY",
            2 => "ANY",
            4 => "PUB",
            8 => "SUB",
            _ => "PUB|SUB",
        }
    }
}

#[derive(Debug)]
struct Account {
    secret: String,
    white: AddrPattern,
    admin: bool,
    default_topic: Perm,
    default_group: Perm,
    topics: HashMap<String, Perm>,
    groups: HashMap<String, Perm>,
}

/// What a request touches: a topic, or a consumer group (which Java names
/// by its retry topic, `%RETRY%group`).
#[derive(Clone, Copy)]
enum Resource<'a> {
    Topic(&'a str),
    Group(&'a str),
}

impl<'a> Resource<'a> {
    /// A topic name, with a retry topic read as its group.
    fn of_topic(topic: &'a str) -> Resource<'a> {
        match topic.strip_prefix(RETRY_GROUP_TOPIC_PREFIX) {
            Some(group) => Resource::Group(group),
            None => Resource::Topic(topic),
        }
    }
}

impl Account {
    fn owns(&self, r: Resource<'_>) -> Perm {
        match r {
            Resource::Topic(t) => self.topics.get(t).copied().unwrap_or(self.default_topic),
            Resource::Group(g) => self.groups.get(g).copied().unwrap_or(self.default_group),
        }
    }
}

/// One loaded `plain_acl.yml`.
#[derive(Debug, Default)]
pub struct PlainAcl {
    global_white: Vec<AddrPattern>,
    accounts: HashMap<String, Account>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileYaml {
    #[serde(default)]
    global_white_remote_addresses: Option<Vec<String>>,
    #[serde(default)]
    accounts: Option<Vec<AccountYaml>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountYaml {
    access_key: Option<String>,
    secret_key: Option<String>,
    #[serde(default)]
    white_remote_address: Option<String>,
    #[serde(default)]
    admin: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    default_topic_perm: Option<String>,
    #[serde(default)]
    default_group_perm: Option<String>,
    #[serde(default)]
    topic_perms: Option<Vec<String>>,
    #[serde(default)]
    group_perms: Option<Vec<String>>,
}

/// Keys and secrets must be longer than this (Java's rule).
const MIN_KEY_CHARS: usize = 7;

/// Codes only admin accounts may send: Java's list (topic and group
/// changes, broker config) plus the other state changes this broker and the
/// name server answer.
const ADMIN_CODES: &[i32] = &[
    rc::UPDATE_AND_CREATE_TOPIC,
    rc::UPDATE_AND_CREATE_TOPIC_LIST,
    rc::UPDATE_BROKER_CONFIG,
    rc::DELETE_TOPIC_IN_BROKER,
    rc::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
    rc::DELETE_SUBSCRIPTIONGROUP,
    rc::INVOKE_BROKER_TO_RESET_OFFSET,
    rc::NOTIFY_BROKER_ROLE_CHANGED,
    // UPDATE_AND_CREATE_STATIC_TOPIC and the ACL 1.0 config codes.
    513,
    50,
    51,
    52,
    53,
    54,
];

/// Name-server codes that change its state. Everything else a name server
/// answers is read-only and stays open, as in RocketMQ (whose name servers
/// check nothing).
const NAMESRV_STATE_CODES: &[i32] = &[
    rc::PUT_KV_CONFIG,
    rc::DELETE_KV_CONFIG,
    rc::REGISTER_BROKER,
    rc::UNREGISTER_BROKER,
    rc::WIPE_WRITE_PERM_OF_BROKER,
    rc::ADD_WRITE_PERM_OF_BROKER,
    rc::DELETE_TOPIC_IN_NAMESRV,
    rc::REGISTER_TOPIC_IN_NAMESRV,
    rc::UPDATE_NAMESRV_CONFIG,
    rc::BROKER_HEARTBEAT,
];

/// Topics anyone with a valid signature may publish to.
const TRACE_TOPIC: &str = "RMQ_SYS_TRACE_TOPIC";

impl PlainAcl {
    pub fn parse(text: &str) -> Result<PlainAcl, String> {
        let file: FileYaml = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        let mut acl = PlainAcl::default();
        for p in file.global_white_remote_addresses.unwrap_or_default() {
            acl.global_white.push(AddrPattern::parse(&p)?);
        }
        for (i, a) in file.accounts.unwrap_or_default().into_iter().enumerate() {
            let at = |what: String| format!("accounts[{i}]: {what}");
            let key = a.access_key.unwrap_or_default();
            let secret = a.secret_key.unwrap_or_default();
            if key.chars().count() < MIN_KEY_CHARS || secret.chars().count() < MIN_KEY_CHARS {
                return Err(at(format!(
                    "accessKey and secretKey must be at least {MIN_KEY_CHARS} characters"
                )));
            }
            let perm = |p: Option<String>| p.as_deref().map(Perm::parse).unwrap_or(Ok(Perm::DENY));
            let admin = match a.admin {
                None | Some(serde_yaml_ng::Value::Null) => false,
                Some(serde_yaml_ng::Value::Bool(b)) => b,
                Some(serde_yaml_ng::Value::String(s)) if s == "true" || s == "false" => s == "true",
                Some(other) => {
                    return Err(at(format!("admin: expected true or false, got {other:?}")))
                }
            };
            let table = |entries: Option<Vec<String>>| {
                let mut out = HashMap::new();
                for entry in entries.unwrap_or_default() {
                    let (name, p) = entry
                        .split_once('=')
                        .ok_or_else(|| at(format!("{entry:?}: expected name=PERM")))?;
                    out.insert(name.trim().to_string(), Perm::parse(p).map_err(&at)?);
                }
                Ok::<_, String>(out)
            };
            let topics = table(a.topic_perms)?;
            let groups = table(a.group_perms)?;
            let account = Account {
                secret,
                white: AddrPattern::parse(a.white_remote_address.as_deref().unwrap_or(""))
                    .map_err(&at)?,
                admin,
                default_topic: perm(a.default_topic_perm).map_err(&at)?,
                default_group: perm(a.default_group_perm).map_err(&at)?,
                topics,
                groups,
            };
            if acl.accounts.insert(key.clone(), account).is_some() {
                return Err(at(format!("accessKey {key:?} appears twice")));
            }
        }
        Ok(acl)
    }

    pub fn accounts(&self) -> usize {
        self.accounts.len()
    }

    /// Checks a request to a broker: `Err` carries the reason.
    pub fn check_broker(&self, req: &RemotingCommand, peer: IpAddr) -> Result<(), String> {
        let Some(account) = self.authenticate(req, peer)? else {
            return Ok(());
        };
        if account.admin {
            return Ok(());
        }
        if ADMIN_CODES.contains(&req.code) {
            return Err(format!("request code {} needs an admin account", req.code));
        }
        each_resource(req, |resource, needed| {
            if needed == Perm::PUB && matches!(resource, Resource::Topic(TRACE_TOPIC)) {
                return Ok(());
            }
            let owned = account.owns(resource);
            if owned.grants(needed) {
                return Ok(());
            }
            let what = match resource {
                Resource::Topic(t) => format!("topic {t}"),
                Resource::Group(g) => format!("group {g}"),
            };
            Err(format!(
                "no {} permission on {what} (has {})",
                needed.name(),
                owned.name()
            ))
        })
    }

    /// Checks a request to a name server: changes need an admin account,
    /// reads are open.
    pub fn check_namesrv(&self, req: &RemotingCommand, peer: IpAddr) -> Result<(), String> {
        if !NAMESRV_STATE_CODES.contains(&req.code) {
            return Ok(());
        }
        match self.authenticate(req, peer)? {
            Some(account) if !account.admin => {
                Err(format!("request code {} needs an admin account", req.code))
            }
            _ => Ok(()),
        }
    }

    /// The account a request is from, once its signature holds; `None`
    /// when a white list lets it through unchecked.
    fn authenticate(
        &self,
        req: &RemotingCommand,
        peer: IpAddr,
    ) -> Result<Option<&Account>, String> {
        if self.global_white.iter().any(|p| p.matches(peer)) {
            return Ok(None);
        }
        let empty = ExtFields::new();
        let fields = req.ext_fields.as_ref().unwrap_or(&empty);
        let key = fields
            .get(signature::ACCESS_KEY)
            .filter(|k| !k.is_empty())
            .ok_or("no AccessKey: the request is not signed")?;
        let account = self
            .accounts
            .get(key)
            .ok_or_else(|| format!("no account for AccessKey {key:?}"))?;
        if account.white.matches(peer) {
            return Ok(None);
        }
        let sig = fields
            .get(signature::SIGNATURE)
            .filter(|s| !s.is_empty())
            .ok_or("no Signature")?;
        let body = req.body.as_deref().unwrap_or(&[]);
        if !signature::verify(&account.secret, fields, req.version, body, sig) {
            return Err(format!(
                "signature mismatch for AccessKey {key:?}: wrong secret, or the request was changed"
            ));
        }
        Ok(Some(account))
    }
}

/// Calls `check` with each resource a request touches and the permission
/// it needs (Java's `PlainAccessResource.parse`), stopping at the first
/// refusal; codes not listed need only a signature. Nothing is allocated
/// but the heartbeat body it decodes.
fn each_resource(
    req: &RemotingCommand,
    mut check: impl FnMut(Resource<'_>, Perm) -> Result<(), String>,
) -> Result<(), String> {
    let Some(f) = req.ext_fields.as_ref() else {
        return Ok(());
    };
    let get = |k: &str| f.get(k).filter(|v| !v.is_empty());
    let topic = |k: &str| get(k).map(Resource::of_topic);
    let group = |k: &str| get(k).map(Resource::Group);
    let sub = |r: Option<Resource<'_>>,
               check: &mut dyn FnMut(Resource<'_>, Perm) -> Result<(), String>| {
        r.map_or(Ok(()), |r| check(r, Perm::SUB))
    };
    match req.code {
        rc::SEND_MESSAGE | rc::SEND_MESSAGE_V2 | rc::SEND_BATCH_MESSAGE => {
            let key = if req.code == rc::SEND_MESSAGE {
                "topic"
            } else {
                "b"
            };
            match topic(key) {
                // Sending to a retry topic is consuming for its group.
                Some(r @ Resource::Group(_)) => check(r, Perm::SUB),
                Some(r) => check(r, Perm::PUB),
                None => Ok(()),
            }
        }
        rc::CONSUMER_SEND_MSG_BACK => sub(group("group"), &mut check),
        rc::PULL_MESSAGE | rc::LITE_PULL_MESSAGE | rc::UPDATE_CONSUMER_OFFSET => {
            sub(topic("topic"), &mut check)?;
            sub(group("consumerGroup"), &mut check)
        }
        rc::QUERY_MESSAGE => sub(topic("topic"), &mut check),
        rc::UNREGISTER_CLIENT | rc::GET_CONSUMER_LIST_BY_GROUP => {
            sub(group("consumerGroup"), &mut check)
        }
        rc::HEART_BEAT => {
            let Some(hb) = req.body.as_deref().and_then(|b| {
                crate::protocol::decode_json::<crate::protocol::HeartbeatData>(b).ok()
            }) else {
                return Ok(());
            };
            for c in &hb.consumer_data_set {
                check(Resource::Group(&c.group_name), Perm::SUB)?;
                for s in &c.subscription_data_set {
                    if let Resource::Topic(t) = Resource::of_topic(&s.topic) {
                        check(Resource::Topic(t), Perm::SUB)?;
                    }
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
globalWhiteRemoteAddresses:
  - 10.10.103.*
accounts:
  - accessKey: RocketMQ
    secretKey: "12345678"
    whiteRemoteAddress:
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - topicA=DENY
      - topicB=PUB|SUB
      - topicC=SUB
    groupPerms:
      - groupA=DENY
      - groupB=PUB|SUB
  - accessKey: rocketmq2
    secretKey: "12345678"
    whiteRemoteAddress: 192.168.1.*
    admin: true
"#;

    fn signed(
        code: i32,
        key: &str,
        secret: &str,
        pairs: &[(&str, &str)],
        body: &[u8],
    ) -> RemotingCommand {
        let mut req = RemotingCommand::new_request(code);
        let f = req.ext_fields_mut();
        for (k, v) in pairs {
            f.insert(k, v);
        }
        f.insert("AccessKey", key);
        let sig = signature::sign(secret, f, 0, body);
        f.insert("Signature", sig);
        if !body.is_empty() {
            req.body = Some(bytes::Bytes::copy_from_slice(body));
        }
        req
    }

    fn local() -> IpAddr {
        "127.0.0.1".parse().unwrap()
    }

    #[test]
    fn permissions_per_resource() {
        let acl = PlainAcl::parse(FILE).unwrap();
        assert_eq!(acl.accounts(), 2);
        let send = |topic: &str| {
            signed(
                rc::SEND_MESSAGE_V2,
                "RocketMQ",
                "12345678",
                &[("b", topic)],
                b"x",
            )
        };
        assert!(acl.check_broker(&send("topicB"), local()).is_ok());
        let e = acl.check_broker(&send("topicC"), local()).unwrap_err();
        assert!(e.contains("no PUB permission on topic topicC"), "{e}");
        assert!(acl.check_broker(&send("topicA"), local()).is_err());
        assert!(
            acl.check_broker(&send("other"), local()).is_err(),
            "default DENY"
        );
        assert!(acl.check_broker(&send(TRACE_TOPIC), local()).is_ok());
        let pull = |topic: &str, group: &str| {
            signed(
                rc::PULL_MESSAGE,
                "RocketMQ",
                "12345678",
                &[("topic", topic), ("consumerGroup", group)],
                b"",
            )
        };
        assert!(acl.check_broker(&pull("topicC", "groupB"), local()).is_ok());
        assert!(
            acl.check_broker(&pull("topicC", "anyGroup"), local())
                .is_ok(),
            "default group SUB"
        );
        let e = acl
            .check_broker(&pull("topicC", "groupA"), local())
            .unwrap_err();
        assert!(e.contains("group groupA"), "{e}");
        assert!(acl
            .check_broker(&pull("topicA", "groupB"), local())
            .is_err());
        // Admin codes.
        let create = signed(
            rc::UPDATE_AND_CREATE_TOPIC,
            "RocketMQ",
            "12345678",
            &[("topic", "x")],
            b"",
        );
        assert!(acl
            .check_broker(&create, local())
            .unwrap_err()
            .contains("admin"));
        let create = signed(
            rc::UPDATE_AND_CREATE_TOPIC,
            "rocketmq2",
            "12345678",
            &[("topic", "x")],
            b"",
        );
        assert!(acl.check_broker(&create, local()).is_ok());
        // Codes with no resource need only the signature.
        let route = signed(
            rc::GET_MAX_OFFSET,
            "RocketMQ",
            "12345678",
            &[("topic", "topicA")],
            b"",
        );
        assert!(acl.check_broker(&route, local()).is_ok());
    }

    #[test]
    fn authentication() {
        let acl = PlainAcl::parse(FILE).unwrap();
        let wrong = signed(
            rc::GET_MAX_OFFSET,
            "RocketMQ",
            "wrong-secret",
            &[("topic", "t")],
            b"",
        );
        assert!(acl
            .check_broker(&wrong, local())
            .unwrap_err()
            .contains("signature mismatch"));
        let unknown = signed(rc::GET_MAX_OFFSET, "nobody-here", "12345678", &[], b"");
        assert!(acl
            .check_broker(&unknown, local())
            .unwrap_err()
            .contains("no account"));
        let mut unsigned = RemotingCommand::new_request(rc::GET_MAX_OFFSET);
        unsigned.ext_fields_mut().insert("AccessKey", String::new());
        assert!(acl
            .check_broker(&unsigned, local())
            .unwrap_err()
            .contains("not signed"));
        // A changed field after signing.
        let mut tampered = signed(
            rc::SEND_MESSAGE_V2,
            "RocketMQ",
            "12345678",
            &[("b", "topicB")],
            b"x",
        );
        tampered.ext_fields_mut().insert("b", "topicC");
        assert!(acl
            .check_broker(&tampered, local())
            .unwrap_err()
            .contains("signature"));
        // White lists.
        let global: IpAddr = "10.10.103.7".parse().unwrap();
        assert!(acl.check_broker(&unsigned, global).is_ok());
        let mut white = RemotingCommand::new_request(rc::UPDATE_AND_CREATE_TOPIC);
        white.ext_fields_mut().insert("AccessKey", "rocketmq2");
        assert!(acl
            .check_broker(&white, "192.168.1.5".parse().unwrap())
            .is_ok());
        assert!(acl.check_broker(&white, local()).is_err());
    }

    #[test]
    fn heartbeat_needs_sub_on_groups_and_topics() {
        let acl = PlainAcl::parse(FILE).unwrap();
        let hb = |group: &str, topic: &str| {
            let body = format!(
                r#"{{"clientID":"c","consumerDataSet":[{{"groupName":"{group}","subscriptionDataSet":[{{"topic":"{topic}","subString":"*"}}]}}]}}"#
            );
            signed(rc::HEART_BEAT, "RocketMQ", "12345678", &[], body.as_bytes())
        };
        assert!(acl.check_broker(&hb("groupB", "topicC"), local()).is_ok());
        assert!(acl.check_broker(&hb("groupA", "topicC"), local()).is_err());
        assert!(acl.check_broker(&hb("groupB", "topicA"), local()).is_err());
    }

    #[test]
    fn name_server_guards_changes_only() {
        let acl = PlainAcl::parse(FILE).unwrap();
        let route = RemotingCommand::new_request(rc::GET_ROUTEINFO_BY_TOPIC);
        assert!(acl.check_namesrv(&route, local()).is_ok());
        let reg = RemotingCommand::new_request(rc::REGISTER_BROKER);
        assert!(acl.check_namesrv(&reg, local()).is_err());
        let user = signed(rc::REGISTER_BROKER, "RocketMQ", "12345678", &[], b"");
        assert!(acl
            .check_namesrv(&user, local())
            .unwrap_err()
            .contains("admin"));
        let admin = signed(rc::PUT_KV_CONFIG, "rocketmq2", "12345678", &[], b"");
        assert!(acl.check_namesrv(&admin, local()).is_ok());
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        for (text, why) in [
            ("accounts: [{accessKey: short, secretKey: 12345678}]", "at least"),
            ("accounts: [{accessKey: longenough, secretKey: 12345678, defaultTopicPerm: ALL}]", "ALL"),
            ("accounts: [{accessKey: longenough, secretKey: 12345678, topicPerms: [noequals]}]", "name=PERM"),
            ("accounts: [{accessKey: longenough, secretKey: 12345678}, {accessKey: longenough, secretKey: 12345678}]", "twice"),
            ("globalWhiteRemoteAddresses: [10.1.*]", "four"),
            ("accounts: {", ""),
        ] {
            let e = PlainAcl::parse(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
        assert_eq!(PlainAcl::parse("").unwrap().accounts(), 0);
    }
}

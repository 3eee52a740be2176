//! Request handling for the name server: decodes each request's header and
//! body, applies it to [`NamesrvState`], and builds the response Java would
//! send (spec §2.2).
//!
//! Errors: a missing or unparsable header field, or a body that does not
//! decode, is answered with SYSTEM_ERROR and a remark naming the field or the
//! JSON error. That is what a Java name server's clients see when a handler
//! throws (the Netty layer turns any exception into SYSTEM_ERROR). Nothing in
//! here panics on request content.

use serde::Serialize;

use crate::protocol::{
    decode_json, decode_json_body, encode_json, BodyError, DataVersion, KvTable,
    RegisterBrokerBody, TopicConfigSerializeWrapper,
};
use crate::remoting::codes::{request_code, response_code};
use crate::remoting::version::V3_0_11;
use crate::remoting::{HeaderError, RemotingCommand};

use super::state::{NamesrvState, RegisterOutcome, Registration};
use super::NAMESPACE_ORDER_TOPIC_CONFIG;

/// Answers one request, or returns `None` when no answer may be sent: for a
/// oneway request (whose effects are still applied) and for a stray response
/// (the name server sends no requests, so no response can be expected).
///
/// `conn_id` identifies the connection the request came over, so that
/// [`on_connection_closed`] can drop the brokers registered over it. `now_ms`
/// is the wall clock in ms, used for broker liveness.
pub fn process(
    state: &mut NamesrvState,
    conn_id: u64,
    req: &RemotingCommand,
    now_ms: i64,
) -> Option<RemotingCommand> {
    if req.is_response() {
        return None;
    }
    let reply = match req.code {
        request_code::PUT_KV_CONFIG => put_kv_config(state, req),
        request_code::GET_KV_CONFIG => get_kv_config(state, req),
        request_code::DELETE_KV_CONFIG => delete_kv_config(state, req),
        request_code::GET_KVLIST_BY_NAMESPACE => get_kv_list(state, req),
        request_code::REGISTER_BROKER => register_broker(state, conn_id, req, now_ms),
        request_code::UNREGISTER_BROKER => unregister_broker(state, req),
        request_code::GET_ROUTEINFO_BY_TOPIC => get_route(state, req, now_ms),
        request_code::GET_BROKER_CLUSTER_INFO => json_reply(&state.cluster_info()),
        request_code::GET_ALL_TOPIC_LIST_FROM_NAMESERVER => all_topics(state),
        request_code::GET_TOPICS_BY_CLUSTER => topics_by_cluster(state, req),
        request_code::GET_SYSTEM_TOPIC_LIST_FROM_NS => json_reply(&state.system_topics()),
        request_code::DELETE_TOPIC_IN_NAMESRV => delete_topic(state, req),
        request_code::WIPE_WRITE_PERM_OF_BROKER => change_write_perm(state, req, true),
        request_code::ADD_WRITE_PERM_OF_BROKER => change_write_perm(state, req, false),
        request_code::QUERY_DATA_VERSION => query_data_version(state, req, now_ms),
        _ => Ok(RemotingCommand::not_supported_reply(req)),
    };
    if req.is_oneway() {
        return None;
    }
    let response = reply.unwrap_or_else(|failure| {
        RemotingCommand::new_response(failure.code, Some(failure.remark))
    });
    Some(response.reply_to(req))
}

/// Forgets every broker whose last registration came over `conn_id`, as Java
/// does when a broker's channel closes. Returns the removed addresses.
pub fn on_connection_closed(state: &mut NamesrvState, conn_id: u64) -> Vec<String> {
    let addrs = state.addrs_registered_over(conn_id);
    for addr in &addrs {
        state.remove_broker_addr(addr);
    }
    addrs
}

/// Removes every broker silent for longer than its timeout
/// ([`BROKER_EXPIRE_MS`](super::BROKER_EXPIRE_MS) by default) at `now_ms`,
/// with its addresses and, for broker names left without any, their queue
/// data; topics left without queue data disappear. Returns the removed
/// addresses.
pub fn scan_inactive(state: &mut NamesrvState, now_ms: i64) -> Vec<String> {
    let addrs = state.expired_addrs(now_ms);
    for addr in &addrs {
        state.remove_broker_addr(addr);
    }
    addrs
}

/// Why a request failed: the response code and remark to send.
#[derive(Debug)]
struct Failure {
    code: i32,
    remark: String,
}

impl Failure {
    fn system_error(remark: impl Into<String>) -> Failure {
        Failure {
            code: response_code::SYSTEM_ERROR,
            remark: remark.into(),
        }
    }
}

impl From<HeaderError> for Failure {
    fn from(error: HeaderError) -> Failure {
        Failure::system_error(error.to_string())
    }
}

impl From<BodyError> for Failure {
    fn from(error: BodyError) -> Failure {
        Failure::system_error(error.to_string())
    }
}

type Reply = Result<RemotingCommand, Failure>;

fn success() -> RemotingCommand {
    RemotingCommand::new_response(response_code::SUCCESS, None)
}

/// SUCCESS with `value` as a compact JSON body.
fn json_reply<T: Serialize>(value: &T) -> Reply {
    Ok(success().with_body(encode_json(value)?))
}

/// The raw value of `field`, keeping an empty string (which the typed getters
/// treat as absent). A KV value may legitimately be empty.
fn ext_raw<'a>(req: &'a RemotingCommand, field: &'static str) -> Result<&'a str, HeaderError> {
    req.ext_fields
        .as_ref()
        .and_then(|fields| fields.get(field))
        .ok_or(HeaderError::Missing { field })
}

fn put_kv_config(state: &mut NamesrvState, req: &RemotingCommand) -> Reply {
    let namespace = req.ext_str("namespace")?;
    let key = req.ext_str("key")?;
    let value = ext_raw(req, "value")?;
    state.kv.put(namespace, key, value);
    Ok(success())
}

fn get_kv_config(state: &NamesrvState, req: &RemotingCommand) -> Reply {
    let namespace = req.ext_str("namespace")?;
    let key = req.ext_str("key")?;
    match state.kv.get(namespace, key) {
        Some(value) => {
            let mut response = success();
            response.set_ext("value", value);
            Ok(response)
        }
        None => Err(Failure {
            code: response_code::QUERY_NOT_FOUND,
            remark: format!("No config item, Namespace: {namespace} Key: {key}"),
        }),
    }
}

fn delete_kv_config(state: &mut NamesrvState, req: &RemotingCommand) -> Reply {
    let namespace = req.ext_str("namespace")?;
    let key = req.ext_str("key")?;
    state.kv.delete(namespace, key);
    Ok(success())
}

fn get_kv_list(state: &NamesrvState, req: &RemotingCommand) -> Reply {
    let namespace = req.ext_str("namespace")?;
    match state.kv.namespace(namespace) {
        Some(table) => json_reply(&KvTable {
            table: table.clone(),
        }),
        None => Err(Failure {
            code: response_code::QUERY_NOT_FOUND,
            remark: format!("No config item, Namespace: {namespace}"),
        }),
    }
}

/// Rejects broker addresses that would corrupt route JSON for Go clients,
/// which cut `brokerAddrs` apart at `,` and `:` and strip `"` (spec §5.2).
/// Java does not check, but one such registration would break every Go
/// client reading that topic's route.
fn check_broker_addr(addr: &str) -> Result<(), Failure> {
    let bad = |c: char| c == ',' || c == '"' || c == '\\' || c == '{' || c == '}' || c <= ' ';
    if addr.chars().any(bad) {
        return Err(Failure::system_error(format!(
            "brokerAddr {addr:?} must not contain spaces, control characters, or any of , \" \\ {{ }}"
        )));
    }
    Ok(())
}

fn register_broker(
    state: &mut NamesrvState,
    conn_id: u64,
    req: &RemotingCommand,
    now_ms: i64,
) -> Reply {
    let broker_name = req.ext_str("brokerName")?;
    let broker_addr = req.ext_str("brokerAddr")?;
    let cluster = req.ext_str("clusterName")?;
    let broker_id = req.ext_i64("brokerId")?;
    // Mandatory in Java, but only ever handed back to slaves; a broker
    // without HA still deserves a route.
    let ha_server_addr = req.ext_str_opt("haServerAddr").unwrap_or("");
    let timeout_ms = req.ext_i64_opt("heartbeatTimeoutMillis")?;
    let enable_acting_master = req.ext_bool_opt("enableActingMaster");
    let compressed = req.ext_bool_opt("compressed").unwrap_or(false);
    let expected_crc = req.ext_i32_opt("bodyCrc32")?.unwrap_or(0);
    check_broker_addr(broker_addr)?;

    let body = req.body.as_deref().unwrap_or_default();
    // 0 means "not computed" (Java's default for the field).
    if expected_crc != 0 && expected_crc != rocketcore_storage::record::body_crc(body) {
        return Err(Failure::system_error("crc32 not match"));
    }
    if compressed {
        return Err(Failure::system_error(
            "compressed REGISTER_BROKER bodies are not supported; set compressedRegister=false",
        ));
    }
    // No body at all: an empty table with an all-zero version, as Java.
    let (topics, filter_servers) = if body.is_empty() {
        (TopicConfigSerializeWrapper::default(), Vec::new())
    } else if req.version >= V3_0_11 {
        let body: RegisterBrokerBody = decode_json(body)?;
        (body.topic_config_serialize_wrapper, body.filter_server_list)
    } else {
        // Brokers older than V3_0_11 send the bare topic wrapper.
        (
            decode_json::<TopicConfigSerializeWrapper>(body)?,
            Vec::new(),
        )
    };

    let outcome = state.register_broker(Registration {
        cluster,
        broker_addr,
        broker_name,
        broker_id,
        ha_server_addr,
        timeout_ms,
        enable_acting_master,
        topics,
        filter_servers,
        conn_id,
        now_ms,
    });
    let (master_addr, ha_server_addr) = match outcome {
        RegisterOutcome::Registered {
            master_addr,
            ha_server_addr,
        } => (master_addr, ha_server_addr),
        RegisterOutcome::RefusedSingleTopic => {
            // Java's remark is just "register broker failed"; the rest says why.
            return Err(Failure::system_error(format!(
                "register broker failed: {broker_name} id {broker_id} is not registered yet \
                 and a first registration must carry more than one topic"
            )));
        }
    };

    let mut response = success();
    // Java always sends the (possibly empty) response header map.
    response.ext_fields_mut();
    if let Some(addr) = ha_server_addr {
        response.set_ext("haServerAddr", addr);
    }
    if let Some(addr) = master_addr {
        response.set_ext("masterAddr", addr);
    }
    if state.config().return_order_topic_config_to_broker {
        if let Some(table) = state.kv.namespace(NAMESPACE_ORDER_TOPIC_CONFIG) {
            let body = encode_json(&KvTable {
                table: table.clone(),
            })?;
            response = response.with_body(body);
        }
    }
    Ok(response)
}

fn unregister_broker(state: &mut NamesrvState, req: &RemotingCommand) -> Reply {
    // Read for validation only: liveness is keyed by address, and an address
    // is removed from every broker id and name it holds.
    req.ext_str("brokerName")?;
    req.ext_str("clusterName")?;
    req.ext_i64_opt("brokerId")?;
    let broker_addr = req.ext_str("brokerAddr")?;
    state.remove_broker_addr(broker_addr);
    Ok(success())
}

fn get_route(state: &NamesrvState, req: &RemotingCommand, now_ms: i64) -> Reply {
    let topic = req.ext_str("topic")?;
    // `acceptStandardJsonOnly` and the request version select Java's JSON
    // dialect; this server always sends the standard form.
    match state.topic_route(topic, now_ms) {
        Some(route) => json_reply(&route),
        None => Err(Failure {
            code: response_code::TOPIC_NOT_EXIST,
            remark: format!("No topic route info in name server for the topic: {topic}"),
        }),
    }
}

fn all_topics(state: &NamesrvState) -> Reply {
    if !state.config().enable_all_topic_list {
        return Err(Failure::system_error("disable"));
    }
    json_reply(&state.all_topics())
}

fn topics_by_cluster(state: &NamesrvState, req: &RemotingCommand) -> Reply {
    if !state.config().enable_topic_list {
        return Err(Failure::system_error("disable"));
    }
    let cluster = req.ext_str("cluster")?;
    json_reply(&state.topics_of_cluster(cluster))
}

fn delete_topic(state: &mut NamesrvState, req: &RemotingCommand) -> Reply {
    let topic = req.ext_str("topic")?;
    let cluster = req.ext_str_opt("clusterName");
    state.delete_topic(topic, cluster);
    Ok(success())
}

fn change_write_perm(state: &mut NamesrvState, req: &RemotingCommand, wipe: bool) -> Reply {
    let broker_name = req.ext_str("brokerName")?;
    let count = state.change_write_perm(broker_name, wipe);
    let mut response = success();
    response.set_ext(
        if wipe {
            "wipeTopicCount"
        } else {
            "addTopicCount"
        },
        count,
    );
    Ok(response)
}

fn query_data_version(state: &mut NamesrvState, req: &RemotingCommand, now_ms: i64) -> Reply {
    req.ext_str("brokerName")?;
    req.ext_str("clusterName")?;
    req.ext_i64("brokerId")?;
    let broker_addr = req.ext_str("brokerAddr")?;
    // Java tolerates a missing body (the version then counts as changed) but
    // fails on a malformed one.
    let version = match decode_json_body::<DataVersion>(req.body.as_deref()) {
        Ok(version) => Some(version),
        Err(BodyError::Missing { .. }) => None,
        Err(error) => return Err(error.into()),
    };
    let (changed, stored) = state.query_data_version(broker_addr, version.as_ref(), now_ms);
    let mut response = success();
    response.set_ext("changed", changed);
    if let Some(stored) = stored {
        response = response.with_body(encode_json(&stored)?);
    }
    Ok(response)
}

//! Controller request and response codes (RocketMQ 5's RequestCode and
//! ResponseCode, `shared/spec/replication.md` §4.2).

pub const ALTER_SYNC_STATE_SET: i32 = 1001;
pub const ELECT_MASTER: i32 = 1002;
pub const REGISTER_BROKER: i32 = 1003;
pub const GET_REPLICA_INFO: i32 = 1004;
pub const GET_METADATA_INFO: i32 = 1005;
pub const GET_NEXT_BROKER_ID: i32 = 1012;
pub const APPLY_BROKER_ID: i32 = 1013;
pub const BROKER_HEARTBEAT: i32 = 904;

pub const FENCED_MASTER_EPOCH: i32 = 2000;
pub const FENCED_SYNC_STATE_SET_EPOCH: i32 = 2001;
pub const INVALID_REPLICAS: i32 = 2003;
pub const MASTER_NOT_AVAILABLE: i32 = 2004;
pub const INVALID_REQUEST: i32 = 2005;
pub const BROKER_NOT_ALIVE: i32 = 2006;
pub const NOT_LEADER: i32 = 2007;
pub const BROKER_METADATA_NOT_EXIST: i32 = 2008;
pub const MASTER_STILL_EXIST: i32 = 2011;
pub const ELECT_MASTER_FAILED: i32 = 2012;
pub const BROKER_ID_INVALID: i32 = 2014;

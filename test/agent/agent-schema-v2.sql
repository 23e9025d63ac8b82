-- The agent tables at schema version 2 (src/agent/agent-store.ts before version 3), for the migration test.
CREATE TABLE IF NOT EXISTS agent_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agent_relays (
  address TEXT PRIMARY KEY,
  operator TEXT NOT NULL,
  added_at INTEGER NOT NULL,
  -- for private relays: the password NEW and PRXY carry
  password TEXT
);
CREATE TABLE IF NOT EXISTS agent_relay_health (
  address TEXT PRIMARY KEY,
  reachable INTEGER NOT NULL,
  latency_ms INTEGER,
  last_ok_at INTEGER,
  last_error TEXT,
  down_since INTEGER
);
CREATE TABLE IF NOT EXISTS agent_connections (
  id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  role TEXT NOT NULL,
  my_info BLOB NOT NULL,
  peer_info BLOB,
  ratchet BLOB,
  ad BLOB,
  invitation_secrets BLOB,
  next_seq INTEGER NOT NULL DEFAULT 1,
  recv_floor INTEGER NOT NULL DEFAULT 0,
  rcpt_pending INTEGER NOT NULL DEFAULT 0,
  rcpt_sent INTEGER NOT NULL DEFAULT 0,
  delivered_upto INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_rcv_queues (
  id INTEGER PRIMARY KEY,
  connection_id TEXT,
  address_id TEXT,
  relay TEXT NOT NULL,
  recipient_id BLOB NOT NULL,
  sender_id BLOB NOT NULL,
  recipient_key BLOB NOT NULL,
  queue_key BLOB NOT NULL,
  key_to_set BLOB,
  secured INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'active',
  replaces BLOB,
  replaces_lost INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER) * 1000),
  -- the ID under which the relay keeps this queue's short link data, if it has one
  link_id BLOB
);
CREATE TABLE IF NOT EXISTS agent_snd_queues (
  id INTEGER PRIMARY KEY,
  connection_id TEXT NOT NULL,
  relay TEXT NOT NULL,
  sender_id BLOB NOT NULL,
  sender_key BLOB NOT NULL,
  status TEXT NOT NULL,
  current INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS agent_outbox (
  id INTEGER PRIMARY KEY,
  connection_id TEXT NOT NULL,
  snd_queue_id INTEGER NOT NULL,
  seq INTEGER,
  envelope BLOB NOT NULL,
  signed INTEGER NOT NULL,
  wait_rcv_queue INTEGER,
  after_sent TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT
);
CREATE INDEX IF NOT EXISTS agent_outbox_by_connection ON agent_outbox(connection_id, id);
CREATE TABLE IF NOT EXISTS agent_recv_buffer (
  connection_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  sent_at INTEGER NOT NULL,
  body BLOB NOT NULL,
  PRIMARY KEY (connection_id, seq)
);
CREATE TABLE IF NOT EXISTS agent_addresses (
  id TEXT PRIMARY KEY,
  rcv_queue_id INTEGER NOT NULL,
  secrets BLOB NOT NULL,
  link TEXT NOT NULL,
  stamp_bits INTEGER NOT NULL DEFAULT 0,
  paused INTEGER NOT NULL DEFAULT 0,
  max_per_hour INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_request_log (address_id TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS agent_requests (
  id INTEGER PRIMARY KEY,
  address_id TEXT NOT NULL,
  ratchet BLOB NOT NULL,
  ad BLOB NOT NULL,
  peer_info BLOB NOT NULL,
  reply_relay TEXT NOT NULL,
  reply_sender_id BLOB NOT NULL,
  received_at INTEGER NOT NULL
);
INSERT INTO agent_meta (key, value) VALUES ('schema', '2');

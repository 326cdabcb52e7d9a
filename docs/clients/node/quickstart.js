// A first mxgateway session from Node.js.
//
// Opens a session, registers with MXAccess, adds and advises TIC101.SP,
// streams the session's events in the background, writes a setpoint and
// waits for its OnWriteComplete, reads two values with ReadBulk, decodes the
// google.rpc.ErrorInfo of a gateway error, and closes the session. It exits
// non-zero when anything is not as described.
//
// Everything it knows about the API comes from the client kit's descriptor
// set (MXGATEWAY_KIT, default ../../../api/mxgateway.v1.binpb). The gateway
// address comes from MXGATEWAY_ADDR (default 127.0.0.1:5000) and the API key
// from MXGATEWAY_API_KEY, else from the gateway's first-run admin key in its
// data directory (MXGATEWAY_DATA_DIR, default ~/.local/state/mxgateway).
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');
require('protobufjs/ext/descriptor'); // adds Root.fromDescriptor

const WAIT_MS = 30000; // how long to wait for any one event

function apiKey() {
  if (process.env.MXGATEWAY_API_KEY) return process.env.MXGATEWAY_API_KEY;
  const dataDir = process.env.MXGATEWAY_DATA_DIR ||
    path.join(process.env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state'), 'mxgateway');
  return fs.readFileSync(path.join(dataDir, 'admin.key'), 'utf8').trim();
}

function fail(msg) {
  console.error(`quickstart: ${msg}`);
  process.exit(1);
}

const kit = fs.readFileSync(process.env.MXGATEWAY_KIT || path.join(__dirname, '..', '..', '..', 'api', 'mxgateway.v1.binpb'));

// The stubs: snake_case field names as in the .proto files, enums as their
// names, 64-bit integers (event sequences) as strings, and for each oneof a
// property naming the field that is set (event.body === 'data_change').
const pkg = grpc.loadPackageDefinition(protoLoader.loadFileDescriptorSetFromBuffer(kit, {
  keepCase: true, enums: String, longs: String, defaults: true, oneofs: true,
}));

// The same descriptors as protobufjs types, to decode error details.
const root = protobuf.Root.fromDescriptor(kit);
const Status = root.lookupType('google.rpc.Status');
const ErrorInfo = root.lookupType('google.rpc.ErrorInfo');

// errorInfo returns the google.rpc.ErrorInfo the gateway put in a failed call
// (trailer grpc-status-details-bin, a google.rpc.Status), or null.
function errorInfo(err) {
  const bin = err.metadata && err.metadata.get('grpc-status-details-bin')[0];
  if (!bin) return null;
  for (const detail of Status.decode(bin).details) {
    if (detail.type_url === 'type.googleapis.com/google.rpc.ErrorInfo') return ErrorInfo.decode(detail.value);
  }
  return null;
}

// Events reads a session's events in the background, in sequence order.
class Events {
  constructor(client, sessionId, md) {
    this.queue = [];
    this.waiter = null;
    this.ended = new Promise((resolve) => { this.resolveEnded = resolve; });
    this.call = client.StreamEvents({ session_id: sessionId }, md);
    this.call.on('data', (resp) => this.push(resp.event));
    this.call.on('error', (err) => { this.push(err); this.resolveEnded(err); });
    this.call.on('end', () => { this.push(null); this.resolveEnded(null); });
  }

  push(ev) {
    this.queue.push(ev);
    if (this.waiter) this.waiter();
  }

  // waitFor resolves with the first event for which match(event) is true.
  async waitFor(what, match) {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      while (this.queue.length > 0) {
        const ev = this.queue.shift();
        if (ev === null || ev instanceof Error) fail(`the event stream ended before ${what}: ${ev}`);
        if (match(ev)) return ev;
      }
      const left = deadline - Date.now();
      if (left <= 0) fail(`no ${what} within ${WAIT_MS} ms`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => { clearTimeout(timer); this.waiter = null; resolve(); };
      });
    }
  }
}

function unary(client, method, request, md) {
  return new Promise((resolve, reject) => {
    client[method](request, md, (err, resp) => (err ? reject(err) : resolve(resp)));
  });
}

async function main() {
  const addr = process.env.MXGATEWAY_ADDR || '127.0.0.1:5000';
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${apiKey()}`);
  // Plaintext: the gateway accepts it on loopback only (use
  // grpc.credentials.createSsl(ca) for a TLS gateway).
  const client = new pkg.mxgateway.v1.Gateway(addr, grpc.credentials.createInsecure());

  const opened = await unary(client, 'OpenSession', { client_name: 'node-quickstart' }, md);
  const sid = opened.session_id;
  console.log(`session ${sid}: worker pid ${opened.worker_pid}, backend ${opened.backend.description}`);
  const events = new Events(client, sid, md);

  async function invoke(command) {
    const { reply } = await unary(client, 'Invoke', { session_id: sid, command }, md);
    if (reply.status !== 'GATEWAY_STATUS_CODE_OK' && reply.status !== 'GATEWAY_STATUS_CODE_BULK') {
      // An MXAccess refusal is a normal reply: status, HRESULT, statuses.
      fail(`${Object.keys(command)[0]} refused: ${reply.status} hresult ${reply.hresult} ${reply.message}`);
    }
    return reply;
  }

  const h = (await invoke({ register: { client_name: 'node-quickstart' } })).register.server_handle;
  const item = (await invoke({ add_item: { server_handle: h, item_definition: 'TIC101.SP' } })).item_handle.item_handle;
  await invoke({ advise: { server_handle: h, item_handle: item } });

  const dataChangeOf = (ev) => ev.body === 'data_change' && ev.data_change.item_handle === item;
  const first = (await events.waitFor('first value', dataChangeOf)).data_change;
  console.log(`TIC101.SP = ${first.value.double_value} (${first.quality.quality_class}, quality ${first.quality.raw})`);

  // A write is only accepted by the reply; its outcome is OnWriteComplete.
  await invoke({ write: { server_handle: h, item_handle: item, value: { double_value: 72.5 } } });
  const done = (await events.waitFor('OnWriteComplete',
    (ev) => ev.body === 'write_complete' && ev.write_complete.item_handle === item)).write_complete;
  if (!done.statuses.every((s) => s.success)) fail(`write refused: ${JSON.stringify(done.statuses)}`);
  await events.waitFor('72.5', (ev) => dataChangeOf(ev) && ev.data_change.value.double_value === 72.5);
  console.log('wrote TIC101.SP = 72.5: write complete');

  // ReadBulk answers GATEWAY_STATUS_CODE_BULK: one entry per reference.
  const read = await invoke({ read_bulk: { server_handle: h, item_definitions: ['TIC101.SP', 'Tank1.Level'] } });
  for (const e of read.read_bulk.entries) {
    console.log(`read ${e.item_definition} = ${e.value.double_value} (cached: ${e.was_cached})`);
  }
  if (read.read_bulk.entries.map((e) => e.was_cached).join() !== 'true,false') {
    fail("ReadBulk did not use the advised item's cached value");
  }

  // A gateway failure is a gRPC error with a google.rpc.ErrorInfo.
  try {
    await unary(client, 'Invoke', { session_id: 'no-such-session', command: { register: {} } }, md);
    fail('an unknown session was accepted');
  } catch (err) {
    const info = errorInfo(err);
    console.log(`unknown session: ${grpc.status[err.code]}, reason ${info && info.reason}`);
    if (err.code !== grpc.status.NOT_FOUND || !info || info.reason !== 'SESSION_NOT_FOUND') {
      fail('expected NOT_FOUND with reason SESSION_NOT_FOUND');
    }
  }

  const closed = await unary(client, 'CloseSession', { session_id: sid }, md);
  const end = await Promise.race([events.ended, new Promise((r) => setTimeout(() => r('timeout'), WAIT_MS))]);
  if (end !== null) fail(`the event stream did not end cleanly after CloseSession: ${end}`);
  console.log(`closed: ${closed.state}`);
  if (closed.state !== 'SESSION_STATE_CLOSED') fail('the session did not close');
  client.close();
  console.log('quickstart: ok');
}

main().catch((err) => fail(err.stack || String(err)));

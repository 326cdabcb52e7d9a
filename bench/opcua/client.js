// OPC UA subscriber of `make bench`: subscribes to the N variables of
// server.js (one subscription, exception-based monitored items) and reports,
// per repetition, the delivered updates/s and the end-to-end latency from
// each value's source timestamp to its receipt.
//
//   node client.js --endpoint opc.tcp://127.0.0.1:4840/mxbench --n 1000 \
//     --publishing-ms 50 --warmup-s 2 --duration-s 5 --reps 3 --pki DIR
//
// Prints one JSON line per repetition, then {"done":true,...}.
"use strict";

const path = require("path");
const {
  OPCUAClient,
  OPCUACertificateManager,
  AttributeIds,
  TimestampsToReturn,
  MessageSecurityMode,
  SecurityPolicy,
  ClientMonitoredItemGroup,
} = require("node-opcua");

function args() {
  const out = {
    endpoint: "opc.tcp://127.0.0.1:4840/mxbench", n: 1000, publishingMs: 50,
    warmupS: 2, durationS: 5, reps: 3, queueSize: 10, pki: path.join(__dirname, ".pki"),
  };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i += 2) {
    const v = a[i + 1];
    switch (a[i]) {
      case "--endpoint": out.endpoint = v; break;
      case "--n": out.n = Number(v); break;
      case "--publishing-ms": out.publishingMs = Number(v); break;
      case "--warmup-s": out.warmupS = Number(v); break;
      case "--duration-s": out.durationS = Number(v); break;
      case "--reps": out.reps = Number(v); break;
      case "--queue-size": out.queueSize = Number(v); break;
      case "--pki": out.pki = v; break;
      default: throw new Error("client.js: unknown flag " + a[i]);
    }
  }
  return out;
}

// Wall-clock milliseconds with sub-millisecond resolution.
const nowMs = () => performance.timeOrigin + performance.now();

function summarise(lat, count, seconds) {
  const s = Float64Array.from(lat).sort();
  const pct = (p) => (s.length ? s[Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length))) - 1] : 0);
  return {
    updates: count,
    seconds,
    updates_per_s: count / seconds,
    latency_p50_ms: pct(50),
    latency_p99_ms: pct(99),
    latency_max_ms: s.length ? s[s.length - 1] : 0,
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const o = args();
  const client = OPCUAClient.create({
    applicationName: "mxbench",
    endpointMustExist: false,
    securityMode: MessageSecurityMode.None,
    securityPolicy: SecurityPolicy.None,
    clientCertificateManager: new OPCUACertificateManager({
      rootFolder: path.join(o.pki, "client"),
      automaticallyAcceptUnknownCertificate: true,
    }),
    connectionStrategy: { maxRetry: 3, initialDelay: 200, maxDelay: 1000 },
  });
  await client.connect(o.endpoint);
  const session = await client.createSession();
  const sub = await session.createSubscription2({
    requestedPublishingInterval: o.publishingMs,
    requestedLifetimeCount: 1000,
    requestedMaxKeepAliveCount: 20,
    maxNotificationsPerPublish: 0,
    publishingEnabled: true,
    priority: 10,
  });
  const items = [];
  for (let i = 0; i < o.n; i++) {
    items.push({ nodeId: "ns=1;s=P" + String(i).padStart(5, "0"), attributeId: AttributeIds.Value });
  }

  let counting = false;
  let count = 0;
  let lat = [];
  const group = ClientMonitoredItemGroup.create(
    sub, items, { samplingInterval: 0, discardOldest: true, queueSize: o.queueSize }, TimestampsToReturn.Both);
  group.on("changed", (_item, dataValue) => {
    if (!counting) return;
    count++;
    const src = dataValue.sourceTimestamp;
    if (src) lat.push(nowMs() - src.getTime());
  });
  await new Promise((resolve, reject) => {
    group.once("initialized", resolve);
    group.once("err", reject);
  });

  await sleep(o.warmupS * 1000);
  for (let rep = 1; rep <= o.reps; rep++) {
    count = 0;
    lat = [];
    counting = true;
    const start = nowMs();
    await sleep(o.durationS * 1000);
    counting = false;
    const seconds = (nowMs() - start) / 1000;
    const r = summarise(lat, count, seconds);
    r.rep = rep;
    process.stdout.write(JSON.stringify(r) + "\n");
  }
  process.stdout.write(JSON.stringify({
    done: true,
    revised_publishing_interval_ms: sub.publishingInterval,
    max_notifications_per_publish: sub.maxNotificationsPerPublish,
  }) + "\n");
  // The results are out: a saturated server may time out the teardown
  // (DeleteMonitoredItems), which must not discard them.
  try {
    await group.terminate();
    await sub.terminate();
    await session.close();
    await client.disconnect();
  } catch (err) {
    process.stderr.write("client.js: teardown: " + (err && err.message ? err.message : err) + "\n");
  }
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write("client.js: " + (err && err.stack ? err.stack : err) + "\n");
  process.exit(1);
});

// OPC UA peer of `make bench`: a node-opcua server exposing N Double
// variables (ns=1;s=P00000 ...) that all change every INTERVAL ms, with the
// change time as the source timestamp. Security None, anonymous: the
// cheapest configuration node-opcua offers.
//
//   node server.js --port 4840 --n 1000 --interval-ms 100 --pki DIR
//
// Prints one JSON line {"ready":true,"endpoint":...} when it listens, then
// runs until SIGTERM/SIGINT.
"use strict";

const path = require("path");
const {
  OPCUAServer,
  OPCUACertificateManager,
  DataType,
  StatusCodes,
  MessageSecurityMode,
  SecurityPolicy,
} = require("node-opcua");

function args() {
  const out = { port: 4840, n: 1000, intervalMs: 100, pki: path.join(__dirname, ".pki") };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i += 2) {
    const v = a[i + 1];
    switch (a[i]) {
      case "--port": out.port = Number(v); break;
      case "--n": out.n = Number(v); break;
      case "--interval-ms": out.intervalMs = Number(v); break;
      case "--pki": out.pki = v; break;
      default: throw new Error("server.js: unknown flag " + a[i]);
    }
  }
  return out;
}

async function main() {
  const o = args();
  const certificateManager = new OPCUACertificateManager({
    rootFolder: path.join(o.pki, "server"),
    automaticallyAcceptUnknownCertificate: true,
  });
  const server = new OPCUAServer({
    port: o.port,
    hostname: "127.0.0.1",
    resourcePath: "/mxbench",
    serverCertificateManager: certificateManager,
    securityModes: [MessageSecurityMode.None],
    securityPolicies: [SecurityPolicy.None],
    allowAnonymous: true,
    buildInfo: { productName: "mxbench OPC UA peer" },
  });
  await server.initialize();
  const addressSpace = server.engine.addressSpace;
  const ns = addressSpace.getOwnNamespace();
  const folder = ns.addFolder(addressSpace.rootFolder.objects, { browseName: "Peer" });
  const vars = [];
  for (let i = 0; i < o.n; i++) {
    const name = "P" + String(i).padStart(5, "0");
    vars.push(ns.addVariable({
      componentOf: folder,
      browseName: name,
      nodeId: "s=" + name,
      dataType: "Double",
      minimumSamplingInterval: 0, // report every change (exception-based)
      value: { dataType: DataType.Double, value: 0 },
    }));
  }
  await server.start();

  let counter = 0;
  const timer = setInterval(() => {
    counter++;
    const now = new Date();
    for (const v of vars) {
      v.setValueFromSource({ dataType: DataType.Double, value: counter }, StatusCodes.Good, now);
    }
  }, o.intervalMs);

  const endpoint = server.getEndpointUrl();
  process.stdout.write(JSON.stringify({ ready: true, endpoint, n: o.n, interval_ms: o.intervalMs }) + "\n");

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    clearInterval(timer);
    await server.shutdown(0);
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => {
  process.stderr.write("server.js: " + (err && err.stack ? err.stack : err) + "\n");
  process.exit(1);
});

// Regenerates the committed test-contract artifacts (abi + bytecode JSON) from their Solidity
// sources with the pinned solc-js (no download: soljson ships inside the npm package).
// Tests never compile; run this only after editing a contract:
//   npm ci --prefix evm && node evm/compile.js
// evmVersion "paris" keeps the bytecode runnable on any local node (no PUSH0/MCOPY).
"use strict";
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");
const solc = require("solc");

const root = path.resolve(__dirname, "..", "alphapulse", "chain");
const srcDir = path.join(root, "contracts");
// `node evm/compile.js [--out DIR]`: DIR defaults to the committed artifacts directory
// (tests compile into a temporary DIR and compare, so sources and artifacts cannot drift).
const outFlag = process.argv.indexOf("--out");
const outDir = outFlag > 0 ? path.resolve(process.argv[outFlag + 1]) : path.join(root, "artifacts");

const sources = {};
for (const f of fs.readdirSync(srcDir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[f] = { content: fs.readFileSync(path.join(srcDir, f), "utf8") };
}
const input = {
  language: "Solidity",
  sources,
  settings: {
    evmVersion: "paris",
    optimizer: { enabled: true, runs: 200 },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);

fs.mkdirSync(outDir, { recursive: true });
for (const [file, contracts] of Object.entries(output.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    if (!c.evm.bytecode.object) continue; // interfaces
    const artifact = {
      contractName: name,
      sourceName: `alphapulse/chain/contracts/${file}`,
      // sha256 of the source file: tests recompute it, so a stale artifact cannot pass unnoticed
      sourceSha256: crypto.createHash("sha256").update(sources[file].content).digest("hex"),
      compiler: `solc-js ${solc.version()}`,
      evmVersion: "paris",
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
      deployedBytecode: "0x" + c.evm.deployedBytecode.object,
    };
    const out = path.join(outDir, `${name}.json`);
    fs.writeFileSync(out, JSON.stringify(artifact, null, 1) + "\n");
    console.log(`${out}: ${c.evm.deployedBytecode.object.length / 2} bytes runtime`);
  }
}

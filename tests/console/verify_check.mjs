// verify_check.mjs - console/verify.js (the console's receipt check) on
// a real receipt and on tampered copies (tests/e2e/test_console.py).
//
//   node verify_check.mjs RECEIPT_JSON_FILE AUDIT_KEY_FILE
//
// Prints one JSON line, {"<case>": verified?, ...}: the receipt as
// served must verify, and each change below must not.

import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const { verifyReceipt } = await import(pathToFileURL(join(HERE, '..', '..', 'console', 'verify.js')));
const [receiptFile, keyFile] = process.argv.slice(2);
const receipt = JSON.parse(readFileSync(receiptFile, 'utf8'));
const keys = readFileSync(keyFile, 'utf8');

// base64 text with byte i's low bit flipped.
function flip(b64text, i = 0) {
  const b = Buffer.from(b64text, 'base64');
  b[i % b.length] ^= 1;
  return b.toString('base64');
}

const tamper = {
  as_served: (r) => r,
  event_changed: (r) => ({ ...r, event: flip(r.event, 40) }),
  other_chunk_hash: (r) => ({ ...r, chunk: r.chunk.map((c, i) => (i === 1 ? flip(c) : c)) }),
  header_seq: (r) => ({ ...r, header: flip(r.header, 16) }),
  leaf_hash: (r) => ({ ...r, leaf_hash: flip(r.leaf_hash) }),
  proof_step: (r) => ({ ...r, proof: r.proof.map((p, i) => (i === 0 ? flip(p) : p)) }),
  proof_shorter: (r) => ({ ...r, proof: r.proof.slice(1) }),
  other_index: (r) => ({ ...r, index: String(Number(r.index) - 1) }),
  root: (r) => ({ ...r, root: flip(r.root) }),
  checkpoint_root: (r) => ({ ...r, checkpoint: r.checkpoint.replace(r.root, flip(r.root)) }),
  checkpoint_signature: (r) => {
    const line = r.checkpoint.slice(r.checkpoint.indexOf('\u2014 ')).split('\n')[0];
    const sig = line.split(' ').pop();
    return { ...r, checkpoint: r.checkpoint.replace(sig, flip(sig, 10)) };
  },
};
const out = {};
for (const [name, f] of Object.entries(tamper)) {
  const v = await verifyReceipt(f(structuredClone(receipt)), keys);
  out[name] = v.ok;
  if (name === 'as_served') out.proven_id = v.id;
}
// Another key id for the log's key: the signature is not the log's.
const other = keys.replace(/\+([0-9a-f]{8})\+/, (m, id) => '+' + (id === '00000000' ? '00000001' : '00000000') + '+');
out.other_key = (await verifyReceipt(receipt, other)).ok;
console.log(JSON.stringify(out));

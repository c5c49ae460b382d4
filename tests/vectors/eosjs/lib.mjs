// Shared helpers for generate.mjs, verify.mjs and sign.mjs.
// eosjs ships CommonJS only, so it is loaded through createRequire.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
export const { PrivateKey, PublicKey, Signature, constructElliptic } =
  require('eosjs/dist/eosjs-key-conversions');
export const numeric = require('eosjs/dist/eosjs-numeric');
export const { KeyType } = numeric;
export const versions = {
  eosjs: require('eosjs/package.json').version,
  'json-canonicalize': require('json-canonicalize/package.json').version,
  // elliptic is not a direct dependency: it is the copy eosjs itself requires.
  elliptic: require(require.resolve('elliptic/package.json', {
    paths: [require.resolve('eosjs')],
  })).version,
};

// The same `new elliptic.ec('secp256k1')` object eosjs builds for every K1 key.
export const ec = constructElliptic(KeyType.k1);

export const sha256 = (data) => createHash('sha256').update(data).digest();
export const hex = (bytes) => Buffer.from(bytes).toString('hex');

// eosjs PrivateKey.sign retries with pers=[1], [2], ... until this holds (copied from
// eosjs 22.1.0 dist/PrivateKey.js). It rejects r or s with the top bit set, and r or s
// with a leading zero byte whose next byte has the top bit clear (not minimal in DER).
export const isCanonical = (d) =>
  !(d[1] & 0x80) && !(d[1] === 0 && !(d[2] & 0x80)) &&
  !(d[33] & 0x80) && !(d[33] === 0 && !(d[34] & 0x80));

// A digest must be exactly 32 bytes of hex: Buffer.from(x, 'hex') silently drops bad input.
export function parseDigest(digest) {
  if (typeof digest !== 'string' || !/^[0-9a-fA-F]{64}$/.test(digest)) {
    throw new Error('digest must be 64 hex characters');
  }
  return Buffer.from(digest, 'hex');
}

// Run `handle` on every JSON line of stdin, printing one JSON line per input line.
// `handle` must never throw; a bad JSON line is reported through `onBadLine`.
export async function mapJsonLines(handle, onBadLine) {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const lines = Buffer.concat(chunks).toString('utf8').split('\n');
  for (const line of lines) {
    if (line.trim() === '') continue;
    let input;
    try {
      input = JSON.parse(line);
    } catch (e) {
      process.stdout.write(JSON.stringify(onBadLine(`invalid JSON line: ${e.message}`)) + '\n');
      continue;
    }
    process.stdout.write(JSON.stringify(handle(input)) + '\n');
  }
}

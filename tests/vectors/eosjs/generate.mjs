// generate.mjs — writes vectors.json: eosjs key/signature vectors, RFC 8785 canonical JSON
// vectors (json-canonicalize) and signed stave events, plus negative cases.
// Deterministic: no randomness, no clock; rerunning rewrites identical bytes
// (only `source.node` follows the Node version used).
//
//   cd tests/vectors/eosjs && npm ci && node generate.mjs
import { writeFileSync } from 'node:fs';
import { canonicalize } from 'json-canonicalize';
import {
  PrivateKey, PublicKey, Signature, KeyType, numeric, versions, ec, sha256, hex, isCanonical,
} from './lib.mjs';

const REGENERATE = 'cd tests/vectors/eosjs && npm ci && node generate.mjs';

function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

// ---------------------------------------------------------------------------------------
// keys: private key i = sha256("stave-eosjs-vector-key-<i>"); every string form from eosjs.

const privateKeys = [];
const keys = [];
for (let i = 0; i < 8; i++) {
  const priv32 = sha256(`stave-eosjs-vector-key-${i}`);
  const pk = PrivateKey.fromElliptic(ec.keyFromPrivate(priv32), KeyType.k1, ec);
  assert(pk.isValid(), `key ${i} valid`);
  const pub = pk.getPublicKey();
  const entry = {
    index: i,
    seed: `stave-eosjs-vector-key-${i}`,
    private_hex: hex(pk.key.data),
    private_pvt_k1: pk.toString(),
    private_wif: pk.toLegacyString(),
    public_hex: hex(pub.key.data),
    public_pub_k1: pub.toString(),
    public_legacy: pub.toLegacyString(),
  };
  // Round trips through eosjs's parsers.
  assert(entry.private_hex === hex(priv32), 'private bytes');
  assert(PrivateKey.fromString(entry.private_wif).toString() === entry.private_pvt_k1, 'wif');
  assert(PublicKey.fromString(entry.public_legacy).toString() === entry.public_pub_k1, 'legacy');
  privateKeys.push(pk);
  keys.push(entry);
}

// ---------------------------------------------------------------------------------------
// signatures: PrivateKey.sign(digest, false) for keys 0..5 x digests 0..3, plus one digest
// above the curve order n (elliptic reduces it mod n for both nonce and e).

// eosjs signs with elliptic options {canonical: true, pers: [tries]}, tries = 1, 2, ... until
// isCanonical. Replaying that loop tells which `pers` produced the signature, so other
// implementations can reproduce eosjs signatures byte for byte (RFC 6979 HMAC-DRBG seeded
// with priv32 || (digest mod n) || pers).
function eosjsPers(pk, digest, sigString) {
  for (let tries = 1; tries < 256; tries++) {
    const es = pk.toElliptic().sign(digest, { canonical: true, pers: [tries] });
    const s = Signature.fromElliptic(es, KeyType.k1, ec);
    if (isCanonical(s.toBinary())) {
      assert(s.toString() === sigString, 'pers replay matches eosjs');
      return tries;
    }
  }
  throw new Error('no canonical signature in 255 tries');
}

const digestSources = [0, 1, 2, 3].map((j) => {
  const message = `stave-eosjs-vector-digest-${j}`;
  return { message, digest: sha256(message) };
});
const highDigest = { message: null, digest: Buffer.alloc(32, 0xff) }; // > n
assert(BigInt('0x' + hex(highDigest.digest)) > BigInt('0x' + ec.n.toString(16)), 'ff.. > n');

function makeSignature(keyIndex, { message, digest }) {
  const pk = privateKeys[keyIndex];
  const sig = pk.sign(digest, false);
  const sigString = sig.toString();
  const pubString = keys[keyIndex].public_pub_k1;
  const parsed = Signature.fromString(sigString);
  assert(parsed.verify(digest, PublicKey.fromString(pubString), false), 'verifies');
  assert(parsed.recover(digest, false).toString() === pubString, 'recovers');
  return {
    key_index: keyIndex,
    message,
    digest_hex: hex(digest),
    public_pub_k1: pubString,
    sig: sigString,
    sig_hex: hex(sig.toBinary()),
    eosjs_pers: eosjsPers(pk, digest, sigString),
  };
}

const signatures = [];
for (let k = 0; k < 6; k++) for (const d of digestSources) signatures.push(makeSignature(k, d));
signatures.push(makeSignature(0, highDigest));

// ---------------------------------------------------------------------------------------
// canonical: json-canonicalize canonicalize(JSON.parse(input)). Inputs are JSON source text;
// String.raw keeps JSON escapes (\u20ac, \ud83d\ude00) as escapes in the input.

const canonicalInputs = [
  ['key-order-utf16', String.raw`{"b":1,"a":2,"é":3,"\u20ac":4,"\ud83d\ude00":5,"\ue000":6}`],
  // RFC 8785 section 3.2.3 sorting example.
  ['rfc8785-sorting', String.raw`{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}`],
  // RFC 8785 section 3.2.2 example.
  ['rfc8785-primitives', String.raw`{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literals":[null,true,false]}`],
  ['numbers-exponent-boundaries', '[1e21,1e20,9.999999999999999e20,1e-7,0.000001,1.5e-7,0.0000015,1E3,1e+2,2e-3]'],
  ['numbers-signs-and-fractions', '[-0,0,-0.0,1.5,-1.5,0.1,0.2,0.30000000000000004,4.50,100.0,1.0,-1e-7]'],
  ['numbers-extremes', '[9007199254740991,-9007199254740991,9007199254740990,4294967296,5e-324,2.2250738585072014e-308,1.7976931348623157e308,123456789012.5]'],
  ['control-chars', String.raw`{"s":"\u0000\u0001\u0007\b\t\n\u000b\f\r\u000e\u001f\u0020\u007f\"\\\/","ls":"\u2028\u2029","nbsp":"\u00a0"}`],
  ['non-bmp-values', String.raw`{"raw":"𝄞😀🎸","escaped":"\ud834\udd1e\ud83d\ude00","mixed":"a\u00e9\u20ac\ud83d\ude00z","pua":"\ue000\uffff"}`],
  ['nested', '{"z":{"y":{"x":{"w":[1,[2,[3,{"b":null,"a":true}]]]}}},"a":[{"d":4,"c":3},{"b":2,"a":1}]}'],
  ['empty-containers', '{"o":{},"a":[],"s":"","n":[{},[],[[]],{"":{}}]}'],
  ['whitespace-and-literals', '\n {\r\n\t"t" : true ,  "f":false,"n" : null , "arr" : [ 1 , 2 ] ,"o":{ } }\n'],
  ['key-prefixes', '{"aa":1,"a":2,"ab":3,"A":4,"":5,"a ":6,"_":7,"~":8,"0":9,"a\\u0000":10}'],
  ['no-unicode-normalisation', String.raw`{"\u00e9":"precomposed","e\u0301":"decomposed","\u212b":"angstrom sign","\u00c5":"A with ring"}`],
  ['top-level-array', '[3,"x",{"b":[],"a":{}},null,-0.0,1e-6,[]]'],
  ['top-level-string', String.raw`"h\u00e9llo \ud83d\ude00"`],
  ['stave-city', '{"city_name":"London","city_lat":51.50735,"city_long":-0.12776,"city_id":"5c05719ddcaeb547028038a9fc843e58ca2cfda393d0427f8bef2885032213cc"}'],
];

const canonical = canonicalInputs.map(([name, input]) => {
  const out = canonicalize(JSON.parse(input));
  const bytes = Buffer.from(out, 'utf8');
  return { name, input, canonical: out, canonical_hex: hex(bytes), sha256: hex(sha256(bytes)) };
});

// ---------------------------------------------------------------------------------------
// events: id = sha256(canonicalize(event without sig)); sig = PrivateKey.sign(id bytes, false).

const CREATED_AT = 1758390021;
const hexId = (label) => hex(sha256(label));

function signEvent(name, keyIndex, unsigned) {
  const canonicalUnsigned = canonicalize(unsigned);
  const id = hex(sha256(Buffer.from(canonicalUnsigned, 'utf8')));
  const sig = privateKeys[keyIndex].sign(Buffer.from(id, 'hex'), false).toString();
  return { name, key_index: keyIndex, event: { ...unsigned, sig }, canonical_unsigned: canonicalUnsigned, id, sig };
}

const bundle = signEvent('create-release-bundle', 0, {
  v: 1,
  type: 'CREATE_RELEASE_BUNDLE',
  author_pubkey: keys[0].public_pub_k1,
  created_at: CREATED_AT,
  parents: [],
  body: {
    release: {
      release_name: 'The Beatles',
      release_altnames: ['The White Album'],
      release_date: '1968-11-22',
      release_format: ['LP'],
      labels: [{
        label_id: hexId('stave-example:label:Apple Records'),
        label_name: 'Apple Records',
        label_city: [{ city_name: 'London', city_lat: 51.50735, city_long: -0.12776 }],
      }],
      tracks: [{
        title: 'Back in the U.S.S.R.',
        listen_link: [
          'https://open.spotify.com/track/0j3p1p06deJ7f9xmJ9yG22',
          'https://music.apple.com/us/song/back-in-the-u-s-s-r/1441133197',
        ],
        cover_song: [],
        sampled_songs: [],
        songwriters: [
          { person_name: 'Paul McCartney', person_roles: [{ role_name: 'Songwriter' }] },
          { person_name: 'John Lennon', person_roles: [{ role_name: 'Songwriter' }] },
        ],
      }],
    },
    tracklist: [{ track_index: 0, disc_side: 1, track_number: 1 }],
  },
  proofs: { source_links: ['https://en.wikipedia.org/wiki/The_Beatles_(album)'] },
});

const events = [
  bundle,
  // author_pubkey in the legacy EOS… form: the id covers that exact string.
  signEvent('vote-legacy-pubkey', 1, {
    v: 1,
    type: 'VOTE',
    author_pubkey: keys[1].public_legacy,
    created_at: CREATED_AT + 60,
    parents: [],
    body: { claim_id: hexId('stave-eosjs-vector-claim-0'), vote: 'yes' },
    proofs: { source_links: [] },
  }),
  signEvent('like', 2, {
    v: 1,
    type: 'LIKE',
    author_pubkey: keys[2].public_pub_k1,
    created_at: CREATED_AT + 120,
    parents: [],
    body: { target: bundle.id },
    proofs: {},
  }),
  // No `proofs` field at all; non-BMP text in the body.
  signEvent('discuss-without-proofs', 3, {
    v: 1,
    type: 'DISCUSS',
    author_pubkey: keys[3].public_pub_k1,
    created_at: CREATED_AT + 180,
    parents: [],
    body: { text: 'Ob-La-Di, Ob-La-Da 🎸 — “€” \u0007', claim_id: hexId('stave-eosjs-vector-claim-0') },
  }),
];

// ---------------------------------------------------------------------------------------
// negative: hand-mutated inputs that a verifier or parser must reject. `eosjs_raw` records
// what plain eosjs does with the input (no extra checks), to show where eosjs is lenient.

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

// Change the middle base58 character of the body after `prefix` to the next alphabet letter.
// The payload changes (not just the checksum), the first byte (key prefix 02/03, WIF 0x80,
// signature header) stays, and the result still decodes to the same number of bytes.
function flipMiddle(s, prefix) {
  const pos = prefix.length + Math.floor((s.length - prefix.length) / 2);
  const next = B58[(B58.indexOf(s[pos]) + 1) % 58];
  return {
    value: s.slice(0, pos) + next + s.slice(pos + 1),
    mutation: `base58 character at index ${pos} changed from '${s[pos]}' to '${next}'`,
  };
}

function rawVerify(pubkey, digestHex, sig) {
  const out = { error: null, verify: null, recovered: null };
  try {
    const digest = Buffer.from(digestHex, 'hex');
    const s = Signature.fromString(sig);
    const p = PublicKey.fromString(pubkey);
    out.recovered = s.recover(digest, false).toString();
    out.verify = s.verify(digest, p, false);
  } catch (e) {
    out.error = e.message;
  }
  return out;
}

function rawPrivate(str) {
  try {
    return { error: null, parsed_as: PrivateKey.fromString(str).toString() };
  } catch (e) {
    return { error: e.message, parsed_as: null };
  }
}

const base = signatures[0]; // key 0, digest 0
const baseBytes = Buffer.from(base.sig_hex, 'hex');
const pub0 = keys[0];

// `public_pub_k1` is the (valid) key the case claims; `pubkey` appears only when the
// verifier is given a mutated key string instead. `verify_input` is the verify.mjs line.
function sigCase(name, kind, reason, mutation, { claimed = pub0.public_pub_k1, pubkey = claimed, digest = base.digest_hex, sig, ...extra }) {
  return {
    name, kind, reason, mutation,
    ...extra,
    digest_hex: digest,
    public_pub_k1: claimed,
    ...(pubkey !== claimed ? { pubkey } : {}),
    sig,
    verify_input: { pubkey, digest, sig },
    eosjs_raw: rawVerify(pubkey, digest, sig),
  };
}

const negative = [];

// tampered-body: body changed after signing, sig kept.
{
  const e = structuredClone(bundle.event);
  e.body.release.release_date = '1968-11-23';
  const { sig, ...unsigned } = e;
  const digest = hex(sha256(Buffer.from(canonicalize(unsigned), 'utf8')));
  negative.push(sigCase('tampered-body', 'event', 'body changed after signing: the id no longer matches the signed one',
    'event create-release-bundle with body.release.release_date changed to 1968-11-23, sig kept; digest_hex is the recomputed id',
    { event: e, sig, digest }));
}
// wrong-key: valid signature by key 0, author_pubkey replaced with key 5.
{
  const e = structuredClone(bundle.event);
  e.author_pubkey = keys[5].public_pub_k1;
  const { sig, ...unsigned } = e;
  const digest = hex(sha256(Buffer.from(canonicalize(unsigned), 'utf8')));
  negative.push(sigCase('wrong-key', 'event', 'signature by key 0 but author_pubkey names key 5',
    'event create-release-bundle with author_pubkey replaced by key 5, sig kept; digest_hex is the recomputed id',
    { event: e, sig, digest, claimed: keys[5].public_pub_k1, signed_by_pub_k1: pub0.public_pub_k1 }));
}
// Checksum flips on each string form.
{
  const m = flipMiddle(pub0.public_pub_k1, 'PUB_K1_');
  negative.push(sigCase('pub-k1-bad-checksum', 'public_key', 'PUB_K1_ checksum does not match', m.mutation,
    { pubkey: m.value, sig: base.sig }));
}
{
  const m = flipMiddle(pub0.public_legacy, 'EOS');
  negative.push(sigCase('legacy-pub-bad-checksum', 'public_key', 'EOS legacy checksum does not match', m.mutation,
    { pubkey: m.value, sig: base.sig }));
}
{
  const m = flipMiddle(base.sig, 'SIG_K1_');
  negative.push(sigCase('sig-k1-bad-checksum', 'signature', 'SIG_K1_ checksum does not match', m.mutation,
    { sig: m.value }));
}
for (const [name, field, prefix, reason] of [
  ['pvt-k1-bad-checksum', 'private_pvt_k1', 'PVT_K1_', 'PVT_K1_ checksum does not match'],
  ['wif-bad-checksum', 'private_wif', '', 'WIF checksum (sha256d) does not match; eosjs 22.1.0 does not check it and silently parses a different key'],
]) {
  const m = flipMiddle(pub0[field], prefix);
  negative.push({
    name, kind: 'private_key', reason, mutation: m.mutation,
    private: m.value,
    valid_form: pub0[field],
    digest_hex: base.digest_hex,
    public_pub_k1: pub0.public_pub_k1,
    sign_input: { private: m.value, digest: base.digest_hex },
    eosjs_raw: rawPrivate(m.value),
  });
}
// high-s: s' = n - s with the recovery parity flipped is still valid ECDSA for the same key.
{
  const { r, s, recoveryParam } = Signature.fromString(base.sig).toElliptic();
  const s2 = ec.n.sub(s);
  const rec2 = recoveryParam ^ 1;
  assert(ec.verify(Buffer.from(base.digest_hex, 'hex'), { r, s: s2 }, ec.keyFromPublic(Buffer.from(pub0.public_hex, 'hex'))), 'high-s verifies');
  assert(ec.recoverPubKey(Buffer.from(base.digest_hex, 'hex'), { r, s: s2 }, rec2).encodeCompressed('hex') === pub0.public_hex, 'high-s recovers');
  const data = new Uint8Array([31 + rec2, ...r.toArray('be', 32), ...s2.toArray('be', 32)]);
  const sig = numeric.signatureToString({ type: KeyType.k1, data }); // correct K1 checksum
  negative.push(sigCase('high-s', 'signature', 'S above n/2 (mathematically valid ECDSA, rejected by the low-S rule)',
    `from signatures[0]: s replaced by n - s, header ${baseBytes[0]} -> ${31 + rec2}, re-encoded with a correct K1 checksum`,
    { sig, sig_hex: hex(data) }));
}
// non-canonical-r: the elliptic signature eosjs would have retried past (r has its top bit set).
{
  const pk = privateKeys[0];
  const digest = Buffer.from(base.digest_hex, 'hex');
  let found = null;
  for (let k = 1; k < 256 && !found; k++) {
    const es = pk.toElliptic().sign(digest, { canonical: true, pers: [k] });
    const s = Signature.fromElliptic(es, KeyType.k1, ec);
    const d = s.toBinary();
    // Only the r half of isCanonical may fail.
    if ((d[1] & 0x80) && !(d[33] & 0x80) && !(d[33] === 0 && !(d[34] & 0x80))) found = { k, s };
  }
  assert(found, 'found a non-canonical r');
  assert(found.s.verify(digest, PublicKey.fromString(pub0.public_pub_k1), false), 'non-canonical r verifies');
  negative.push(sigCase('non-canonical-r', 'signature', 'r has its top bit set: fails eosjs isCanonical (mathematically valid ECDSA)',
    `elliptic sign(digest, key 0, {canonical: true, pers: [${found.k}]}) encoded with Signature.fromElliptic().toString()`,
    { sig: found.s.toString(), sig_hex: hex(found.s.toBinary()) }));
}
// Wrong key types: the K1 bytes with R1 checksums (eosjs's own encoder).
negative.push(sigCase('sig-r1-type', 'signature', 'SIG_R1_ signature where SIG_K1_ is required',
  'signatures[0] bytes encoded as SIG_R1_ (checksum suffix "R1")',
  { sig: numeric.signatureToString({ type: KeyType.r1, data: baseBytes }) }));
{
  const pubkey = numeric.publicKeyToString({ type: KeyType.r1, data: Buffer.from(pub0.public_hex, 'hex') });
  negative.push(sigCase('pub-r1-type', 'public_key', 'PUB_R1_ public key where K1 is required',
    'key 0 public bytes encoded as PUB_R1_ (checksum suffix "R1")', { pubkey, sig: base.sig }));
}
// Truncations.
negative.push(sigCase('truncated-sig', 'signature', 'SIG_K1_ string truncated: decodes to wrong bytes, checksum fails',
  'last base58 character of signatures[0].sig removed', { sig: base.sig.slice(0, -1) }));
negative.push(sigCase('sig-64-bytes', 'signature', 'signature data is 64 bytes (header byte missing) with a correct K1 checksum',
  'signatures[0] bytes without the header byte, encoded as SIG_K1_ with a K1 checksum over the 64 bytes',
  { sig: numeric.signatureToString({ type: KeyType.k1, data: baseBytes.subarray(1) }) }));

// Every mutated string must still be made only of base58 letters (so it decodes).
for (const c of negative) {
  for (const str of [c.verify_input?.pubkey, c.verify_input?.sig, c.private]) {
    if (!str) continue;
    const body = str.replace(/^(PUB_K1_|PUB_R1_|SIG_K1_|SIG_R1_|PVT_K1_|EOS)/, '');
    assert([...body].every((ch) => B58.includes(ch)), `${c.name} is base58`);
  }
}

// ---------------------------------------------------------------------------------------

const vectors = {
  description: 'stave test vectors produced with eosjs and json-canonicalize; see README.md',
  source: {
    generator: 'tests/vectors/eosjs/generate.mjs',
    regenerate: REGENERATE,
    eosjs: versions.eosjs,
    'json-canonicalize': versions['json-canonicalize'],
    elliptic: versions.elliptic,
    node: process.version,
  },
  keys,
  signatures,
  canonical,
  events,
  negative,
};

writeFileSync(new URL('./vectors.json', import.meta.url), JSON.stringify(vectors, null, 2) + '\n');
console.log(`wrote vectors.json: ${keys.length} keys, ${signatures.length} signatures, ` +
  `${canonical.length} canonical, ${events.length} events, ${negative.length} negative`);

// sign.mjs — the eosjs reference signer.
// stdin:  JSON Lines {"private": "PVT_K1_…|<WIF>", "digest": "<64 hex>"}
// stdout: one line per input {"sig": "SIG_K1_…"|null, "pubkey": "PUB_K1_…"|null, "error": string|null}
//
// Signs with eosjs PrivateKey.sign(digest, false), exactly as stave's event signing does.
import { PrivateKey, KeyType, parseDigest, mapJsonLines } from './lib.mjs';

function signOne(input) {
  try {
    if (input === null || typeof input !== 'object') throw new Error('input must be a JSON object');
    const digest = parseDigest(input.digest);
    const key = PrivateKey.fromString(input.private);
    if (key.getType() !== KeyType.k1) throw new Error('private key is not K1');
    // eosjs 22.1.0 does not check the WIF checksum (see its "todo" in stringToPrivateKey),
    // so a WIF must re-encode to itself; this also rejects extra leading '1' characters.
    if (!input.private.startsWith('PVT_') && key.toLegacyString() !== input.private) {
      throw new Error("WIF checksum doesn't match");
    }
    if (!key.isValid()) throw new Error('private key is out of range');
    const sig = key.sign(digest, false);
    return { sig: sig.toString(), pubkey: key.getPublicKey().toString(), error: null };
  } catch (e) {
    return { sig: null, pubkey: null, error: String(e && e.message ? e.message : e) };
  }
}

await mapJsonLines(signOne, (error) => ({ sig: null, pubkey: null, error }));

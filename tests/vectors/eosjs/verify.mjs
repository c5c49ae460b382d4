// verify.mjs — the eosjs reference verifier.
// stdin:  JSON Lines {"pubkey": "PUB_K1_…|EOS…", "digest": "<64 hex>", "sig": "SIG_K1_…"}
// stdout: one line per input {"ok": bool, "recovered": "PUB_K1_…"|null, "error": string|null}
//
// ok = eosjs parses sig and pubkey (K1 only), Signature.verify(digest, pubkey, false) is true,
// Signature.recover(digest, false) equals the PUB_K1_ form of pubkey, the signature passes
// eosjs's isCanonical test, and s <= n/2. The last two are checked here because eosjs's
// verify() (elliptic) accepts both high-S and non-canonical-r signatures.
import { PublicKey, Signature, KeyType, ec, isCanonical, parseDigest, mapJsonLines } from './lib.mjs';

function verifyOne(input) {
  let recovered = null;
  try {
    if (input === null || typeof input !== 'object') throw new Error('input must be a JSON object');
    const digest = parseDigest(input.digest);
    const sig = Signature.fromString(input.sig);
    if (sig.getType() !== KeyType.k1) throw new Error('signature is not SIG_K1_');
    const pub = PublicKey.fromString(input.pubkey);
    if (pub.getType() !== KeyType.k1) throw new Error('public key is not K1');

    recovered = sig.recover(digest, false).toString();
    if (!sig.verify(digest, pub, false)) throw new Error('signature does not verify');
    if (recovered !== pub.toString()) throw new Error('recovered key does not match pubkey');
    // Low-S first, so a high-S signature is reported as such (it also fails isCanonical).
    if (sig.toElliptic().s.cmp(ec.nh) > 0) throw new Error('high S: s > n/2');
    if (!isCanonical(sig.toBinary())) throw new Error('not canonical (eosjs isCanonical)');
    return { ok: true, recovered, error: null };
  } catch (e) {
    return { ok: false, recovered, error: String(e && e.message ? e.message : e) };
  }
}

await mapJsonLines(verifyOne, (error) => ({ ok: false, recovered: null, error }));

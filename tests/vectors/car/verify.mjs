// Reads a CAR file with @ipld/car, checks every block against its CID and prints JSON:
// {"roots": [...], "blocks": [{"cid", "length"}], "index": {address: cid} (the root, decoded
// as DAG-CBOR when it is one)}. Exits 1 with {"error"} on any problem. Run: node verify.mjs FILE
import { createReadStream } from 'node:fs'
import { CarBlockIterator } from '@ipld/car'
import * as dagCbor from '@ipld/dag-cbor'
import { identity } from 'multiformats/hashes/identity'
import { sha256, sha512 } from 'multiformats/hashes/sha2'

const hashers = { [sha256.code]: sha256, [sha512.code]: sha512, [identity.code]: identity }
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i])

try {
  const iterator = await CarBlockIterator.fromIterable(createReadStream(process.argv[2]))
  const roots = (await iterator.getRoots()).map(String)
  const result = { roots, blocks: [], index: null }
  for await (const { cid, bytes } of iterator) {
    const hasher = hashers[cid.multihash.code]
    if (!hasher) throw new Error(`${cid}: unsupported multihash 0x${cid.multihash.code.toString(16)}`)
    const digest = await hasher.digest(bytes)
    if (!equal(digest.digest, cid.multihash.digest)) throw new Error(`${cid}: block does not match its CID`)
    result.blocks.push({ cid: String(cid), length: bytes.length })
    if (roots.includes(String(cid)) && cid.code === dagCbor.code) {
      const decoded = dagCbor.decode(bytes)
      result.index = Object.fromEntries(Object.entries(decoded).map(([k, v]) => [k, String(v)]))
    }
  }
  console.log(JSON.stringify(result))
} catch (error) {
  console.log(JSON.stringify({ error: String(error) }))
  process.exit(1)
}

// Writes CAR files with @ipld/car, the reference JavaScript implementation, so stave's read_car
// and CarArchive are tested against files stave did not write, and vectors.json describing them.
// Deterministic: no randomness, no clock. Run: npm ci && node generate.mjs
//
// archive.car  an index root (DAG-CBOR {address: CID}) then three raw sha2-256 media blocks:
//              exactly the layout of a stave archive run, so CarArchive must write these bytes.
// mixed.car    the same plus blocks stave never writes (sha2-512, identity), which read_car
//              must still verify.
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { CarWriter } from '@ipld/car'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { sha256, sha512 } from 'multiformats/hashes/sha2'

const hex = (bytes) => createHash('sha256').update(bytes).digest('hex')
const text = (s) => new TextEncoder().encode(s)

async function writeCar (name, root, blocks) {
  const { writer, out } = CarWriter.create([root])
  const chunks = []
  const collecting = (async () => { for await (const chunk of out) chunks.push(chunk) })()
  for (const block of blocks) await writer.put(block)
  await writer.close()
  await collecting
  writeFileSync(name, Buffer.concat(chunks))
  return { file: name, roots: [root.toString()], blocks: blocks.map(({ cid, bytes }) => ({ cid: cid.toString(), length: bytes.length })) }
}

// Media blobs, addressed by their SHA-256 as stave does, each a raw sha2-256 block.
const media = []
const index = {}
for (const n of [0, 1, 2]) {
  const bytes = text(`stave CAR vector ${n}: ` + 'x'.repeat(100 * n))
  const cid = CID.create(1, raw.code, await sha256.digest(bytes))
  media.push({ cid, bytes })
  index[`media/${hex(bytes)}`] = cid
}
const rootBytes = dagCbor.encode(index)
const root = CID.create(1, dagCbor.code, await sha256.digest(rootBytes))
const extra = text('a block hashed with sha2-512')
const inline = text('inline')
const foreign = [
  { cid: CID.create(1, raw.code, await sha512.digest(extra)), bytes: extra },
  { cid: CID.create(1, raw.code, identity.digest(inline)), bytes: inline },
]

const pkg = JSON.parse(readFileSync('node_modules/@ipld/car/package.json', 'utf8'))
const vectors = {
  source: { '@ipld/car': pkg.version, node: process.version },
  media: Object.fromEntries(media.map(({ bytes }) => [hex(bytes), Buffer.from(bytes).toString('utf8')])),
  index: Object.fromEntries(Object.entries(index).map(([k, v]) => [k, v.toString()])),
  files: [
    await writeCar('archive.car', root, [{ cid: root, bytes: rootBytes }, ...media]),
    await writeCar('mixed.car', root, [{ cid: root, bytes: rootBytes }, ...media, ...foreign]),
  ],
}
writeFileSync('vectors.json', JSON.stringify(vectors, null, 2) + '\n')

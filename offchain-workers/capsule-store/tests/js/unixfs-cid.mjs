// Prints the root CID IPFS computes for a file: `node unixfs-cid.mjs FILE [CHUNK_BYTES]`,
// with the options of kubo's `ipfs add --cid-version=1 --raw-leaves --chunker=size-CHUNK`.
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { readFileSync } from 'node:fs'
const [file, chunk] = [process.argv[2], Number(process.argv[3] || 1048576)]
const bytes = readFileSync(file)
const store = new MemoryBlockstore()
// kubo's `ipfs add --cid-version=1 --raw-leaves --chunker=size-N` (balanced layout, 174 links per node)
let last
for await (const entry of importer([{ content: bytes }], store, {
  cidVersion: 1, rawLeaves: true, chunker: fixedSize({ chunkSize: chunk }),
  layout: balanced({ maxChildrenPerNode: 174 }), reduceSingleLeafToSelf: true,
})) { last = entry }
console.log(last.cid.toString())

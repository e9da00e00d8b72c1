import t from 'tap'
import { Cluster } from '../../bench/harness/cluster.js'
import { fanOut } from '../../bench/harness/scenarios.js'
import { SealedCodec, variant } from '../../bench/variants/sealed-dgram.js'
import { variantSuite } from './fixtures/variant-suite.js'

const HEADER = 6 // from, packet number

// Every message delivered intact between real processes.
await variantSuite(variant)

t.test('sealed-dgram runs the latency cases: ping-pong and fan-out, where the proxy seals for each downstream', async (t) => {
  t.same(variant.scenarios, ['ping-pong', 'fan-out'])
  const cluster = await Cluster.start(variant, { downstreams: 4, startTimeoutMs: 60_000, taskTimeoutMs: 30_000 })
  t.teardown(() => cluster.close())
  const f = await fanOut(cluster, { size: 64, rounds: 40, warmup: 5 })
  t.equal(f.ok, true, `every downstream got every broadcast and answered (checked at each) ${f.failure ?? ''}`)
  t.same([f.targets, f.completedRounds, f.allReceived.count], [4, 40, 40])
  const stats = await cluster.stats()
  for (const name of ['proxy', 'd1', 'd2', 'd3', 'd4']) t.same(stats[name], { malformed: 0, authFailures: 0 }, `${name}: every datagram opened`)
})

t.test('sealed-dgram: each datagram is sealed for one direction; any change fails to open', async (t) => {
  const a = new SealedCodec(1)
  const b = new SealedCodec(2)
  const payload = Buffer.from('the floor of a protected design')
  const datagrams: Buffer[] = []
  for (let i = 0; i < 3; i++) {
    const d = Buffer.concat(a.encode(2, payload))
    t.equal(d.length, 6 + payload.length + 16, 'from, packet number, ciphertext, tag')
    t.equal(d.readUInt16LE(0), 1)
    t.equal(d.readUInt32LE(2), i, 'packet numbers count up')
    t.not(d.subarray(6, 6 + payload.length).toString(), payload.toString(), 'encrypted')
    datagrams.push(d)
  }
  for (const d of datagrams) {
    const copy = Buffer.from(d) // decode opens in place
    t.same(b.decode(1, copy), payload)
    t.equal(b.decode(1, copy), null, 'opened in place: the datagram now holds its plaintext')
  }
  t.same(b.stats(), { authFailures: 3 })

  let failures = 0
  const d = datagrams[0]!
  for (let i = 0; i < d.length; i++) {
    const bad = Buffer.from(d)
    bad[i] ^= 0x20
    if (i < 2) continue // the sender's address picks the key; the node checks it before decoding
    t.equal(b.decode(1, bad), null, `bit flip at byte ${i}`)
    failures++
  }
  t.equal(b.decode(1, Buffer.from(d.subarray(0, d.length - 1))), null, 'truncated')
  t.equal(b.decode(1, Buffer.from(d.subarray(0, HEADER + 15))), null, 'shorter than a tag')
  t.equal(b.decode(1, Buffer.from(d.subarray(0, 4))), null, 'shorter than the header')
  t.equal(a.decode(2, Buffer.from(d)), null, 'sealed for 1→2, opened as 2→1')
  t.same(b.stats(), { authFailures: 3 + failures + 2 }, 'counted (the header-only datagram is malformed, not opened)')
  t.same(a.stats(), { authFailures: 1 })
  t.same(b.decode(1, Buffer.from(d)), payload, 'the original still opens (no replay window in the floor)')
})

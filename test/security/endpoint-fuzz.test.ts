/**
 * 100,000 hostile datagrams at a live keyed endpoint on 127.0.0.1 while it
 * carries 20,000 real reliable messages: no crash, no unhandled error, heap
 * bounded, the real traffic delivered exactly once, in order, intact. The
 * engine is bench/fuzz.ts (`npm run fuzz -- --count N` for longer campaigns).
 */
import t from 'tap'
import { checkReport, formatReport, Mutator, runFuzz } from '../../bench/fuzz.js'
import { decodePacket } from '../../lib/wire/codec.js'

t.test('the generator is seeded: same seed, same datagrams', async (t) => {
  const a = new Mutator(42)
  const b = new Mutator(42)
  const c = new Mutator(43)
  let same = true
  let differs = false
  for (let i = 0; i < 2000; i++) {
    const [ka, da] = a.next()
    const [kb, db] = b.next()
    const [, dc] = c.next()
    if (ka !== kb || Buffer.compare(da, db) !== 0) same = false
    if (Buffer.compare(da, dc) !== 0) differs = true
  }
  t.ok(same)
  t.ok(differs)
})

t.test('huge-length datagrams start with the magic and never decode', async (t) => {
  const m = new Mutator(5)
  m.victimConnectionId = 0x12345678
  const reasons = new Set<string>()
  const decoded: number[] = []
  for (let i = 0; i < 500; i++) {
    const d = m.hugeLength()
    t.ok(d.subarray(0, 5).equals(Buffer.from([0x0d, 0x48, 0x53, 0x4d, 0x57])))
    const r = decodePacket(d)
    if (typeof r === 'string') reasons.add(r)
    else decoded.push(i)
  }
  t.same(decoded, [], 'none decodes')
  t.ok(reasons.has('undecodable') || reasons.has('bad-handshake'))
})

t.test('fuzz: 100,000 datagrams at a live node carrying 20,000 real messages', async (t) => {
  const COUNT = 100_000
  const MESSAGES = 20_000
  const report = await runFuzz({ count: COUNT, seed: 1, messages: MESSAGES, timeoutMs: 60_000 })
  t.comment(formatReport(report))
  t.same(checkReport(report), [], 'every check of the campaign passed')
  t.same(report.errors, [], 'no uncaught exception, unhandled rejection or error event')
  t.equal(report.fired, COUNT)
  t.ok(report.firedFromPeer > COUNT * 0.2 && report.firedFromPeer < COUNT * 0.3, `${report.firedFromPeer} fired from the peer's own address`)
  // The kernel may drop some when the loaded machine falls behind; nearly all must arrive for the run to mean anything.
  t.ok(report.hostileArrived >= COUNT * 0.9, `${report.hostileArrived} of ${COUNT} arrived`)
  for (const kind of ['random', 'magic-garbage', 'huge-length', 'crafted-handshake', 'crafted-data', 'truncated', 'bit-flip', 'splice', 'replay']) {
    t.ok((report.byKind[kind] ?? 0) > 1000, `${kind}: ${report.byKind[kind]}`)
  }
  t.equal(report.delivered, MESSAGES, 'every real message delivered once')
  t.equal(report.answers, MESSAGES / 10, 'every answer delivered once')
  t.ok(report.inOrder, 'in order and intact, both directions')
  t.equal(report.sessionsAtEnd, 1)
  t.equal(report.sessionEvents, 1, 'no other session was ever created')
  for (const reason of ['replayed', 'auth-failed', 'address-mismatch', 'bad-cookie', 'bad-magic', 'undecodable']) {
    t.ok((report.dropped[reason] ?? 0) > 0, `dropped as ${reason}: ${report.dropped[reason]}`)
  }
  t.equal(report.sessionAuthFailures, (report.dropped.replayed ?? 0) + (report.dropped['auth-failed'] ?? 0),
    'the session counts every replayed and forged packet from its address')
  t.ok(report.replyBytesToAttackers <= report.attackerBytesFired, `amplification ${report.replyBytesToAttackers} / ${report.attackerBytesFired}`)
  t.ok(report.heapAfter - report.heapBefore < 64 * 1024 * 1024, `heap ${report.heapBefore} → ${report.heapAfter}`)
  t.comment(`campaign took ${Math.round(report.elapsedMs)} ms`)
})

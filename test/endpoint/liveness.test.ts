import t from 'tap'
import { Delivery } from '../../lib/wire/codec.js'
import { A, B, connect, driveUntil, world } from './helpers.js'

t.test('backpressure: false at high water, drain fires, QueueFullError at the hard cap', async (t) => {
  const w = world({ link: { delayMs: 1 }, a: { insecure: true, sendQueueHighWater: 64 * 1024 }, keep: false })
  const { sa } = await connect(w)
  let drains = 0
  w.a.on('drain', () => drains++)
  let falses = 0
  let err: any
  const msg = Buffer.alloc(1000)
  for (let i = 0; i < 100000; i++) {
    try { if (!sa.send(msg)) falses++ } catch (e) { err = e; break }
  }
  t.equal(err?.code, 'ERR_WARPMESH_QUEUE_FULL')
  t.equal(err?.name, 'QueueFullError')
  t.equal(falses > 0, true)
  const q = sa.stats().queuedBytes
  t.equal(q <= 64 * 1024 + (1 << 20), true, `queue bounded (${q} B)`)
  t.equal(await driveUntil(w, () => drains > 0, 2000), true, 'drain fired')
  await sa.waitDrain()
  t.equal(await driveUntil(w, () => sa.stats().unackedMessages === 0, 5000), true)
  await w.a.close(); await w.b.close()
})

t.test('sendAcked resolves on ack, rejects when the peer dies; undelivered reported on idle timeout', async (t) => {
  const w = world({ link: { delayMs: 1 }, a: { insecure: true, idleTimeoutMs: 1000 } })
  const { sa } = await connect(w)
  let resolved = false
  sa.sendAcked(Buffer.from('one')).then(() => { resolved = true })
  t.equal(await driveUntil(w, () => resolved, 100), true)
  w.net.partition(A.address, B.address)
  const start = w.clock.now()
  let rejected: any
  sa.sendAcked(Buffer.from('two')).catch((e) => { rejected = e })
  sa.send(Buffer.from('three'), { delivery: Delivery.RELIABLE_UNORDERED })
  sa.send(Buffer.from('lost'), { delivery: Delivery.UNRELIABLE })
  t.equal(await driveUntil(w, () => w.downA.length === 1, 3000), true)
  t.equal(rejected?.name, 'SessionClosedError')
  t.equal(w.downA[0].reason, 'idle-timeout')
  const at = w.clock.now() - start
  t.equal(at >= 999 && at <= 1002, true, `declared down after idleTimeoutMs (${at} ms after the last packet)`)
  t.same(w.downA[0].undelivered.map((u) => Buffer.from(u.data).toString()).sort(), ['three', 'two'], 'unacked reliable messages reported')
  t.equal(w.a.sessions().length, 0)
  await w.a.close(); await w.b.close()
})

t.test('keepalive keeps an idle session up', async (t) => {
  const w = world({ link: { delayMs: 1 } })
  const { sa, sb } = await connect(w)
  t.equal(await driveUntil(w, () => !sa.isOpen || !sb.isOpen, 30000, 50), false, '30 s idle, still up')
  t.equal(w.downA.length + w.downB.length, 0)
  await w.a.close(); await w.b.close()
})

t.test('unreliable reassemblies bounded (LRU + TTL) and counted as expired', async (t) => {
  const w = world({ link: { delayMs: 1 }, b: { insecure: true, maxReassemblies: 4, reassemblyTtlMs: 500 } })
  const { sa, sb } = await connect(w)
  // Drop every second fragment: no unreliable message completes.
  const send = w.ta.send.bind(w.ta)
  let n = 0
  w.ta.send = (c, p, a) => { if (n++ % 2 === 0) send(c, p, a) }
  for (let i = 0; i < 10; i++) sa.send(Buffer.alloc(3000, i), { delivery: Delivery.UNRELIABLE })
  await driveUntil(w, () => false, 20)
  t.equal(sb.conn.reassemblies <= 4, true, `at most maxReassemblies held (${sb.conn.reassemblies})`)
  const evicted = sb.stats().reassembliesExpired
  t.equal(evicted > 0, true, 'evicted ones counted')
  w.ta.send = send
  await driveUntil(w, () => false, 600)
  sa.send(Buffer.alloc(3000, 9), { delivery: Delivery.UNRELIABLE }) // touches the cache after the TTL
  await driveUntil(w, () => false, 20)
  t.equal(sb.stats().reassembliesExpired > evicted, true, 'stale ones expire by TTL')
  t.equal(w.gotB.length, 1)
  await w.a.close(); await w.b.close()
})

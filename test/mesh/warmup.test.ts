// Start-up warm-up: two private loopback endpoints exchange round trips and
// close; MeshNode.start({ warmup }) runs it before binding the node's own
// endpoint. Real UDP on 127.0.0.1.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { Coordinator } from '../../lib/mesh/coordinator.js'
import { MeshNode } from '../../lib/mesh/node.js'
import { DEFAULT_WARMUP, MAX_WARMUP_ROUND_TRIPS, SETTLE_ROUND_TRIPS, warmUp } from '../../lib/warmup.js'
import { memoryLogger } from './fixtures/sim.js'
import { Endpoint } from '../../lib/endpoint.js'
import { Delivery } from '../../lib/wire/codec.js'
import { warmUpMesh } from '../../lib/mesh/warmup.js'

/** UDP sockets this process holds (node's own accounting of live handles). */
function udpHandles (): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length
}

/** The UDP handle count once it is back to `n` (a closed socket's handle goes on a later turn of the loop), within 1 s. */
async function udpHandlesSettle (n: number): Promise<number> {
  for (let i = 0; i < 100 && udpHandles() !== n; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  return udpHandles()
}

t.test('warmUp exchanges the round trips asked for and closes its endpoints', async (t) => {
  const before = udpHandles()
  const r = await warmUp({ roundTrips: 400 })
  t.equal(r.roundTrips, 400)
  t.equal(r.stopped, undefined)
  t.ok(r.ms > 0)
  t.equal(await udpHandlesSettle(before), before, 'no socket left open')
  t.equal(r.sessions, 1, 'under 2 × SETTLE_ROUND_TRIPS: one session')
  const plain = await warmUp({ roundTrips: 50, protect: false })
  t.same([plain.roundTrips, plain.stopped], [50, undefined], 'unprotected too')
})

t.test('a warm-up of 2 × SETTLE_ROUND_TRIPS or more runs a short session and closes it before the rest', async (t) => {
  const before = udpHandles()
  const r = await warmUp({ roundTrips: 2 * SETTLE_ROUND_TRIPS + 1 })
  t.same([r.roundTrips, r.sessions, r.stopped], [2 * SETTLE_ROUND_TRIPS + 1, 2, undefined])
  t.equal(await udpHandlesSettle(before), before, 'no socket left open')
})

t.test('the warm-up also carries one-way messages in every delivery mode', async (t) => {
  const seen = new Set<number>()
  const emit = Endpoint.prototype.emit
  Endpoint.prototype.emit = function (this: Endpoint, event: string | symbol, ...args: unknown[]) {
    if (event === 'message') seen.add(args[3] as number)
    return emit.call(this, event, ...args)
  }
  t.teardown(() => { Endpoint.prototype.emit = emit })
  const r = await warmUp({ roundTrips: 700 })
  Endpoint.prototype.emit = emit
  t.equal(r.stopped, undefined)
  t.same([...seen].sort(), [Delivery.UNRELIABLE, Delivery.UNRELIABLE_SEQUENCED, Delivery.RELIABLE_UNORDERED, Delivery.RELIABLE_ORDERED].sort())
})

/** Reasons of every endpoint 'session-down' while `run` runs. */
async function sessionDowns (t: Tap.Test, run: () => Promise<unknown>): Promise<string[]> {
  const reasons: string[] = []
  const emit = Endpoint.prototype.emit
  Endpoint.prototype.emit = function (this: Endpoint, event: string | symbol, ...args: unknown[]) {
    if (event === 'session-down') reasons.push(args[1] as string)
    return emit.call(this, event, ...args)
  }
  t.teardown(() => { Endpoint.prototype.emit = emit })
  try {
    await run()
  } finally {
    Endpoint.prototype.emit = emit
  }
  return reasons
}

t.test('each private session closes one side first, and the other hears it leave (the CLOSE path is warmed too)', async (t) => {
  const endpoint = await sessionDowns(t, () => warmUp({ roundTrips: 2 * SETTLE_ROUND_TRIPS + 1 }))
  t.equal(endpoint.filter((r) => r === 'peer-shutdown').length, 2, `both sessions: ${endpoint.join(', ')}`)
  const mesh = await sessionDowns(t, () => warmUpMesh((o) => MeshNode.start(o), { roundTrips: 2 * SETTLE_ROUND_TRIPS + 1, protect: true, timeoutMs: 20_000 }))
  t.ok(mesh.filter((r) => r === 'peer-shutdown').length >= 4, `node half: b hears a, the coordinator hears b, in both pairs: ${mesh.join(', ')}`)
})

t.test('warmUp stops at its time limit and still resolves', async (t) => {
  const before = udpHandles()
  const r = await warmUp({ roundTrips: MAX_WARMUP_ROUND_TRIPS, timeoutMs: 30 })
  // The short session may finish within the limit; then the long one's handshake gets what is left of it.
  t.match(r.stopped, /timed out after \d+ ms/)
  t.ok(r.roundTrips < MAX_WARMUP_ROUND_TRIPS, `${r.roundTrips} round trips done`)
  t.equal(await udpHandlesSettle(before), before, 'no socket left open')
})

t.test('warmUp refuses bad options', async (t) => {
  for (const roundTrips of [0, -1, 1.5, MAX_WARMUP_ROUND_TRIPS + 1, NaN]) {
    await t.rejects(warmUp({ roundTrips }), RangeError, `roundTrips ${roundTrips}`)
  }
  await t.rejects(warmUp({ timeoutMs: 0 }), RangeError)
})

t.test('warmUpMesh runs the node layer: every kind of message, two private pairs, nothing left open', async (t) => {
  const before = await udpHandlesSettle(0) // an earlier test's sockets may still be closing
  const started: string[] = []
  const start = async (o: Parameters<typeof MeshNode.start>[0]): Promise<MeshNode> => {
    started.push(o.id)
    t.equal(o.warmup, 0, 'its nodes run no warm-up of their own')
    return MeshNode.start(o)
  }
  const r = await warmUpMesh(start, { roundTrips: 2 * SETTLE_ROUND_TRIPS + 100, protect: true, timeoutMs: 20_000 })
  t.same([r.roundTrips, r.stopped], [2 * SETTLE_ROUND_TRIPS + 100, undefined])
  t.same(started, ['warmup-a', 'warmup-b', 'warmup-a', 'warmup-b'], 'a short pair closed before the long one')
  for (const kind of ['send', 'broadcast', 'request', 'publish', 'oneWay'] as const) t.ok(r.kinds[kind] > 0, `${kind}: ${r.kinds[kind]}`)
  t.equal(r.kinds.send + r.kinds.broadcast + r.kinds.request + r.kinds.publish, r.roundTrips, 'one kind per round trip')
  t.ok(r.kinds.publish >= r.roundTrips / 8 - 2, 'publications reached the subscriber (none fell back to a send)')
  t.equal(await udpHandlesSettle(before), before, 'no socket left open (nodes and coordinators closed)')
  const plain = await warmUpMesh((o) => MeshNode.start(o), { roundTrips: 20, protect: false, timeoutMs: 20_000 })
  t.same([plain.roundTrips, plain.stopped], [20, undefined], 'unprotected too')
})

t.test('warmUpMesh stops at its time limit and still resolves; bad options reject', async (t) => {
  const before = await udpHandlesSettle(0)
  const r = await warmUpMesh((o) => MeshNode.start(o), { roundTrips: MAX_WARMUP_ROUND_TRIPS, protect: true, timeoutMs: 150 })
  t.ok(r.stopped !== undefined, `stopped: ${r.stopped}`)
  t.ok(r.roundTrips < MAX_WARMUP_ROUND_TRIPS)
  t.equal(await udpHandlesSettle(before), before, 'no socket left open')
  await t.rejects(warmUpMesh((o) => MeshNode.start(o), { roundTrips: 0, protect: true, timeoutMs: 100 }), RangeError)
  await t.rejects(warmUpMesh((o) => MeshNode.start(o), { roundTrips: 10, protect: true, timeoutMs: 0 }), RangeError)
})

t.test('MeshNode.start({ warmup }) warms up, then joins and carries messages as usual', async (t) => {
  const keys = [randomBytes(32)]
  const coordinator = await Coordinator.start({ address: '127.0.0.1', port: 0, keys })
  t.teardown(() => coordinator.close())
  const log = memoryLogger('debug')
  const a = await MeshNode.start({ id: 'a', address: '127.0.0.1', coordinators: [{ host: '127.0.0.1', port: coordinator.port }], keys, warmup: 300, logger: log.logger })
  t.teardown(() => a.close())
  const b = await MeshNode.start({ id: 'b', address: '127.0.0.1', coordinators: [{ host: '127.0.0.1', port: coordinator.port }], keys })
  t.teardown(() => b.close())
  t.ok(log.lines.some((l) => l.includes('warm-up done') && l.includes('"roundTrips":300') && l.includes('"meshRoundTrips":300')), 'logged at debug with the counts of both halves')
  const got = new Promise<string>((resolve) => b.on('message', (m: { from: string, data: Uint8Array }) => resolve(`${m.from}:${Buffer.from(m.data).toString()}`)))
  for (let i = 0; i < 200 && !a.peers().some((p) => p.id === 'b'); i++) await new Promise((resolve) => setTimeout(resolve, 10))
  a.send('b', Buffer.from('after warm-up'))
  t.equal(await got, 'a:after warm-up')
})

t.test('the warm-up runs once per process: a node after a warm-up at least as long skips it', async (t) => {
  const keys = [randomBytes(32)]
  const coordinator = await Coordinator.start({ address: '127.0.0.1', port: 0, keys })
  t.teardown(() => coordinator.close())
  const coordinators = [{ host: '127.0.0.1', port: coordinator.port }]
  const warmed = async (id: string, warmup?: number): Promise<boolean> => {
    const log = memoryLogger('debug')
    const node = await MeshNode.start({ id, address: '127.0.0.1', coordinators, keys, logger: log.logger, ...(warmup === undefined ? {} : { warmup }) })
    t.teardown(() => node.close())
    return log.lines.some((l) => l.includes('warm-up done'))
  }
  await warmed('c') // the default warm-up, unless an earlier test's node already ran it in this process
  t.equal(await warmed('d'), false, 'the default again: already done in this process')
  t.equal(await warmed('e', 300), false, 'a shorter one: skipped too')
  t.equal(await warmed('f', DEFAULT_WARMUP + 1), true, 'a longer one runs')
  t.equal(await warmed('g'), false, 'and after it, the default is skipped')
})

t.test('MeshNode.start refuses a bad warmup before binding anything', async (t) => {
  for (const warmup of [-1, 2.5, MAX_WARMUP_ROUND_TRIPS + 1]) {
    await t.rejects(MeshNode.start({ id: 'x', coordinators: [{ host: '127.0.0.1', port: 9 }], insecure: true, warmup }), RangeError, `warmup ${warmup}`)
  }
})

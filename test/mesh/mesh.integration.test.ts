/**
 * The mesh across real processes on 127.0.0.1: two coordinators, one proxy,
 * three downstreams (plus restarts, a late joiner and a duplicate id).
 * Every child is killed by PID in teardown; every wait is bounded.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { freePorts, Procs, type Proc } from './fixtures/procs.js'

const HB = 500
const PEER_TIMEOUT = HB * 3 // default peerTimeoutMs = heartbeatMs × leaseMisses
const START_MS = 60_000 // TS loader start-up on a loaded machine

async function peersOf(p: Proc): Promise<string[]> {
  const r = await p.cmd('peers')
  return (r.peers as { id: string }[]).map((x) => x.id).sort()
}

async function until(pred: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

t.test('coordinators, proxy and downstreams in separate processes', async (t) => {
  const procs = new Procs({ WARPMESH_KEY: randomBytes(32).toString('hex'), MESH_HB: String(HB) })
  t.teardown(() => procs.stopAll())
  const [c1Port, c2Port, proxyPort, d1Port, d2Port, d3Port, latePort, dupPort] = await freePorts(8)
  const coords = [c1Port, c2Port]
  let c1 = procs.coordinator('c1', c1Port)
  const c2 = procs.coordinator('c2', c2Port)
  await Promise.all([c1.started(START_MS), c2.started(START_MS)])
  const proxy = procs.node('proxy', 'proxy', proxyPort, coords)
  const d1 = procs.node('d1', 'downstream', d1Port, coords)
  const d2 = procs.node('d2', 'downstream', d2Port, coords)
  let d3 = procs.node('d3', 'downstream', d3Port, coords)
  await Promise.all([proxy, d1, d2, d3].map((p) => p.started(START_MS)))
  let nodes = [proxy, d1, d2, d3]
  await until(async () => (await Promise.all(nodes.map(peersOf))).every((p) => p.length === 3), 10_000, 'every table to hold the 3 others')
  t.same(await peersOf(d1), ['d2', 'd3', 'proxy'], 'd1 sees everyone')

  // duplicate id: refused with a clear error
  const dup = procs.node('d1', 'downstream', dupPort, coords)
  const dupStart = dup.started(START_MS).then(() => null, (e: Error) => e)

  // 10,000 reliable messages d1 → d2 while coordinator c1 is killed with SIGKILL
  let streamDone = false
  const stream = d1.cmd('stream', { to: 'd2', count: 10_000 }, 60_000).finally(() => { streamDone = true })
  await new Promise((resolve) => setTimeout(resolve, 30))
  await c1.kill9()
  t.equal(streamDone, false, 'c1 was killed while the stream was running')
  // a node joining while c1 is down registers through c2 and everyone sees it
  const late = procs.node('late', 'downstream', latePort, coords)
  await late.started(START_MS)
  nodes = [proxy, d1, d2, d3, late]
  await until(async () => (await Promise.all(nodes.map(peersOf))).every((p) => p.length === 4), 10_000, 'everyone to see the late joiner')
  t.pass('a new node joined through the surviving coordinator')
  t.same((await stream).sent, 10_000)
  await until(async () => (await d2.cmd('received', { from: 'd1' })).count === 10_000, 20_000, 'd2 to receive 10,000 messages')
  const r = await d2.cmd('received', { from: 'd1' })
  t.same({ count: r.count, duplicates: r.duplicates, outOfOrder: r.outOfOrder }, { count: 10_000, duplicates: 0, outOfOrder: 0 },
    'zero lost, zero duplicated, in order')

  // restart c1 empty: refilled by re-registration within two heartbeats
  c1 = procs.coordinator('c1-restarted', c1Port)
  await c1.started(START_MS)
  await c1.waitFor(() => c1.events.some((e) => e.ev === 'table' && e.size === 5), 10_000, 'refill')
  const refill = c1.events.find((e) => e.ev === 'table' && e.size === 5)!
  t.ok(refill.sinceListenMs! <= 2 * HB, `restarted coordinator refilled ${refill.sinceListenMs} ms after listening (≤ ${2 * HB})`)
  const listeningAt = c1.ready!.listeningAt as number
  await Promise.all(nodes.map((p) => p.waitFor(() => p.events.some((e) => e.ev === 'coordinator-up' && e.at! >= listeningAt), 5000, 'coordinator-up')))
  for (const p of nodes) {
    const e = p.events.find((x) => x.ev === 'coordinator-up' && x.at! >= listeningAt)!
    t.ok(e.at! - listeningAt <= 2 * HB, `${p.name} re-registered ${e.at! - listeningAt} ms after the restart`)
  }
  const tables = await Promise.all(nodes.map(peersOf))
  t.ok(tables.every((p) => p.length === 4), 'every node still holds the full table')

  const dupErr = await dupStart
  t.ok(dupErr instanceof Error, 'the duplicate did not start')
  t.match(dup.failed, { code: 'ERR_WARPMESH_DUPLICATE_ID', message: /d1.*held by a live node at 127\.0\.0\.1/ })

  // the coordinators never carried data
  for (const c of [c2, c1]) {
    const s = (await c.cmd('stats')).stats as Record<string, number>
    t.equal(s.dataFramesRelayed, 0, `${c.name}: zero data relayed`)
    t.equal(s.dataMessagesReceived, 0, `${c.name}: zero data received`)
  }

  // request to an unknown peer, request timeout
  t.match(await d1.cmd('request', { to: 'nobody', text: 'x' }), { ok: false, code: 'ERR_WARPMESH_UNKNOWN_PEER' })
  const to = await d1.cmd('request', { to: 'd2', text: 'hang', timeoutMs: 300 })
  t.match(to, { ok: false, code: 'ERR_WARPMESH_TIMEOUT' })
  t.ok((to.ms as number) >= 290 && (to.ms as number) < 2000, `timed out after ${to.ms} ms`)
  t.match(await d1.cmd('request', { to: 'd3', text: 'ping' }), { ok: true, text: 'ping' })

  // kill -9 a downstream with a request pending to it
  const oldEpoch = d3.ready!.epoch as number
  const pending = d1.cmd('request', { to: 'd3', text: 'hang', timeoutMs: 30_000 }, 40_000)
  await new Promise((resolve) => setTimeout(resolve, 50))
  const killedAt = Date.now()
  await d3.kill9()
  const others = [proxy, d1, d2, late]
  await Promise.all(others.map((p) => p.waitFor(() => p.events.some((e) => e.ev === 'peer-down' && e.id === 'd3'), 10_000, 'peer-down d3')))
  for (const p of others) {
    const e = p.events.find((x) => x.ev === 'peer-down' && x.id === 'd3')!
    // detection: the direct session's idle timeout, or lease expiry (checked once per heartbeat) + a delta
    t.ok(e.at! - killedAt <= PEER_TIMEOUT + 2 * HB, `${p.name} saw peer-down after ${e.at! - killedAt} ms (${e.reason})`)
  }
  t.match(await pending, { ok: false, code: 'ERR_WARPMESH_PEER_DOWN' }, 'the pending request rejected with PeerDownError')

  // restart it: peer-up with a new epoch everywhere
  d3 = procs.node('d3', 'downstream', d3Port, coords)
  const ready = await d3.started(START_MS)
  t.not(ready.epoch, oldEpoch)
  await Promise.all(others.map((p) => p.waitFor(() => p.events.some((e) => e.ev === 'peer-up' && e.id === 'd3' && e.epoch === ready.epoch), 10_000, 'peer-up d3')))
  t.pass('every node saw peer-up with the new epoch')
  t.match(await d2.cmd('request', { to: 'd3', text: 'again' }), { ok: true, text: 'again' })
})

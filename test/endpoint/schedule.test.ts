// The endpoint's one timer: a flush must not scan every session (a proxy
// keeps hundreds), and deadlines of sessions that were not flushed must
// still fire.
import t from 'tap'
import { Endpoint, type Session } from '../../lib/endpoint.js'
import { Connection } from '../../lib/core/connection.js'
import { FakeClock, SimNetwork } from '../../lib/testing.js'
import { Delivery } from '../../lib/wire/codec.js'
import type { Clock } from '../../lib/transport/transport.js'
import { ticks } from './helpers.js'

const PEERS = 40

async function hubWithPeers(clock: FakeClock, net: SimNetwork, hubClock: Clock = clock): Promise<{ hub: Endpoint, peers: Endpoint[], sessions: Session[], got: string[] }> {
  const hub = new Endpoint(net.bind('10.1.0.1', 1000), { insecure: true, clock: hubClock })
  const peers: Endpoint[] = []
  const sessions: Session[] = []
  const got: string[] = []
  for (let i = 0; i < PEERS; i++) {
    const e = new Endpoint(net.bind(`10.1.1.${i + 1}`, 2000), { insecure: true, clock })
    e.on('message', (d: Uint8Array) => got.push(`${i}:${Buffer.from(d).toString()}`))
    peers.push(e)
  }
  hub.on('session', (s: Session) => sessions.push(s))
  const opened = peers.map((e) => e.connect('10.1.0.1', 1000))
  for (let ms = 0; ms < 2000 && sessions.length < PEERS; ms++) {
    clock.advance(1)
    await ticks(1)
  }
  await Promise.all(opened)
  return { hub, peers, sessions, got }
}

t.test(`a flush looks at the sessions it flushed, not at all ${PEERS}`, async (t) => {
  const clock = new FakeClock()
  const net = new SimNetwork({ clock, seed: 3, delayMs: 0.2 })
  const { hub, peers, sessions, got } = await hubWithPeers(clock, net)
  t.equal(sessions.length, PEERS)
  clock.advance(50)
  await ticks(2)
  const original = Connection.prototype.nextDeadline
  let calls = 0
  Connection.prototype.nextDeadline = function (this: Connection) { calls++; return original.call(this) }
  t.teardown(() => { Connection.prototype.nextDeadline = original })
  // 100 sends from the hub to one peer, one flush each (the clock never
  // reaches the ack delay, so no timer fires in between).
  for (let i = 0; i < 100; i++) {
    sessions[0]!.send(Buffer.from(`m${i}`), { channel: 0, delivery: Delivery.RELIABLE_ORDERED })
    clock.runDeferred()
    await ticks(1)
  }
  const perFlush = calls / 100
  Connection.prototype.nextDeadline = original
  t.ok(perFlush < 5, `nextDeadline calls per flush: ${perFlush} (was ≥ ${PEERS} when every flush scanned every session)`)
  // Everything arrives, in order, at the one peer.
  for (let ms = 0; ms < 200 && got.length < 100; ms++) { clock.advance(1); await ticks(1) }
  const peer = Number(sessions[0]!.remoteAddress.split('.')[3]) - 1
  t.same(got, Array.from({ length: 100 }, (_, i) => `${peer}:m${i}`))
  await Promise.all([hub.close(), ...peers.map((e) => e.close())])
})

t.test(`a timer firing asks only the sessions whose deadline passed, not all ${PEERS}`, async (t) => {
  const clock = new FakeClock()
  const net = new SimNetwork({ clock, seed: 5, delayMs: 0.2 })
  // The hub's own view of the clock counts its timer firings (the peers share the clock).
  let firings = 0
  let inFiring = false
  const hubClock: Clock = {
    now: () => clock.now(),
    setTimer: (fn, delayMs) => clock.setTimer(() => {
      firings++
      inFiring = true
      try { fn() } finally { inFiring = false }
    }, delayMs),
    clearTimer: (h) => clock.clearTimer(h),
    defer: (fn) => clock.defer(fn),
  }
  const { hub, peers, sessions, got } = await hubWithPeers(clock, net, hubClock)
  clock.advance(50)
  await ticks(2)
  firings = 0
  const original = Connection.prototype.nextDeadline
  let calls = 0
  Connection.prototype.nextDeadline = function (this: Connection) { if (inFiring) calls++; return original.call(this) }
  t.teardown(() => { Connection.prototype.nextDeadline = original })
  // One reliable message to one peer every 2 ms for 400 ms: its ACKs keep
  // moving the RTO the hub's timer was armed for, so the timer mostly fires
  // for nothing (the other 39 sessions have nothing due).
  for (let i = 0; i < 200; i++) {
    sessions[0]!.send(Buffer.from(`m${i}`))
    for (let k = 0; k < 2; k++) { clock.advance(1); await ticks(1) }
  }
  for (let ms = 0; ms < 200 && got.length < 200; ms++) { clock.advance(1); await ticks(1) }
  Connection.prototype.nextDeadline = original
  t.equal(got.length, 200, 'every message arrived')
  t.ok(firings >= 10, `the hub's timer fired (${firings} times)`)
  t.ok(calls / firings < 4, `deadlines computed per firing: ${(calls / firings).toFixed(2)} (${PEERS} when every firing asked every session)`)
  await Promise.all([hub.close(), ...peers.map((e) => e.close())])
})

t.test('deadlines of sessions that were not flushed still fire: a silent peer times out while another is busy', async (t) => {
  const clock = new FakeClock()
  const net = new SimNetwork({ clock, seed: 4, delayMs: 0.2 })
  const hub = new Endpoint(net.bind('10.1.0.1', 1000), { insecure: true, clock, idleTimeoutMs: 300, keepaliveMs: 50 })
  const busy = new Endpoint(net.bind('10.1.1.1', 2000), { insecure: true, clock, idleTimeoutMs: 300, keepaliveMs: 50 })
  const quiet = new Endpoint(net.bind('10.1.1.2', 2000), { insecure: true, clock, idleTimeoutMs: 300, keepaliveMs: 50 })
  const down: string[] = []
  hub.on('session-down', (s: Session, reason: string) => down.push(`${s.remoteAddress} ${reason}`))
  const [sBusy] = await Promise.all([hub.connect('10.1.1.1', 2000), quiet.connect('10.1.0.1', 1000), (async () => {
    for (let ms = 0; ms < 100; ms++) { clock.advance(1); await ticks(1) }
  })()])
  t.equal(hub.sessions().length, 2)
  // The quiet peer vanishes; the hub keeps flushing only the busy session.
  net.partition({ address: '10.1.1.2', port: 2000 }, { address: '10.1.0.1', port: 1000 })
  for (let ms = 0; ms < 1000 && down.length === 0; ms++) {
    sBusy.send(Buffer.from('tick'))
    clock.advance(1)
    await ticks(1)
  }
  t.same(down, ['10.1.1.2 idle-timeout'], 'the quiet session timed out')
  t.equal(sBusy.isOpen, true, 'the busy one did not')
  await Promise.all([hub.close(), busy.close(), quiet.close()])
})

t.test('a broadcast from a handler: every session\'s packet leaves before the received ACKs are processed', async (t) => {
  const clock = new FakeClock()
  const net = new SimNetwork({ clock, seed: 5, delayMs: 0.2 })
  const { hub, peers, sessions } = await hubWithPeers(clock, net)
  clock.advance(50)
  await ticks(2)
  const targets = sessions.slice(0, 3)
  const peerOf = (s: Session): Endpoint => peers[Number(s.remoteAddress.split('.')[3]) - 1]!
  // The first target's peer answers the hub's hello at once, so the answer carries the ACK of the hello.
  const first = peerOf(targets[0]!)
  first.on('message', (d: Uint8Array, s: Session) => { if (Buffer.from(d).toString() === 'hello') s.send(Buffer.from('answer')) })
  // On the answer, the hub broadcasts to the three targets from its handler.
  hub.on('message', (d: Uint8Array) => {
    if (Buffer.from(d).toString() === 'answer') for (const s of targets) s.send(Buffer.from('all'))
  })
  const log: string[] = []
  const send = hub.transport.send.bind(hub.transport)
  hub.transport.send = (chunks, port, address) => { log.push(`send ${address}`); send(chunks, port, address) }
  targets.forEach((s) => {
    const settle = s.conn.settle.bind(s.conn)
    s.conn.settle = () => { const r = settle(); if (r) log.push(`settle ${s.remoteAddress}`); return r }
  })
  targets[0]!.send(Buffer.from('hello'))
  for (let ms = 0; ms < 20 && !log.includes(`send ${targets[2]!.remoteAddress}`); ms++) { clock.advance(1); await ticks(1) }
  const settled = log.lastIndexOf(`settle ${targets[0]!.remoteAddress}`)
  t.ok(log.includes(`send ${targets[2]!.remoteAddress}`), 'the broadcast left')
  t.ok(settled > log.indexOf(`send ${targets[1]!.remoteAddress}`) && settled > log.indexOf(`send ${targets[2]!.remoteAddress}`),
    `the answer's ACK was processed after the broadcast's packets: ${log.join(', ')}`)
  await Promise.all([hub.close(), ...peers.map((e) => e.close())])
})

// Two endpoints on a SimNetwork with a FakeClock: building blocks for the
// endpoint tests. Everything is seeded; nothing waits on real time.
import { Endpoint, type EndpointOptions, type Session } from '../../lib/endpoint.js'
import { FakeClock, SimNetwork, type SimTransport, type LinkConditions } from '../../lib/testing.js'
import type { UndeliveredMessage } from '../../lib/core/connection.js'

export const A = { address: '10.0.0.1', port: 1000 }
export const B = { address: '10.0.0.2', port: 2000 }
export const KEY = Buffer.alloc(32, 7)

export interface Msg { data: Buffer, session: Session, channel: number, delivery: number }
export interface Down { session: Session, reason: string, undelivered: UndeliveredMessage[] }

export interface World {
  clock: FakeClock
  net: SimNetwork
  ta: SimTransport
  tb: SimTransport
  a: Endpoint
  b: Endpoint
  gotA: Msg[]
  gotB: Msg[]
  downA: Down[]
  downB: Down[]
  /** Datagrams each transport sent, as bytes (only when `capture`). */
  sentA: Buffer[]
  sentB: Buffer[]
  /** b's address (A.address's counterpart); `connect` dials it. */
  bAddress: string
}

export interface WorldOptions {
  link?: Partial<LinkConditions>
  seed?: number
  keyed?: boolean
  capture?: boolean
  a?: EndpointOptions
  b?: EndpointOptions
  /** Keep message data (copy); default true. */
  keep?: boolean
  /** Host addresses of a and b. Default A.address, B.address. */
  hosts?: readonly [string, string]
}

export function capture(t: SimTransport, into: Buffer[]): void {
  const send = t.send.bind(t)
  t.send = (chunks, port, address) => {
    into.push(Buffer.concat(chunks as Uint8Array[]))
    send(chunks, port, address)
  }
}

export function world(o: WorldOptions = {}): World {
  const clock = new FakeClock()
  const net = new SimNetwork({ clock, seed: o.seed ?? 1, ...o.link })
  const [hostA, hostB] = o.hosts ?? [A.address, B.address]
  const ta = net.bind(hostA, A.port)
  const tb = net.bind(hostB, B.port)
  const sentA: Buffer[] = []
  const sentB: Buffer[] = []
  if (o.capture === true) {
    capture(ta, sentA)
    capture(tb, sentB)
  }
  const base: EndpointOptions = o.keyed === true ? { keys: [KEY], clock } : { insecure: true, clock }
  const a = new Endpoint(ta, { ...base, ...o.a })
  const b = new Endpoint(tb, { ...base, ...o.b })
  const w: World = { clock, net, ta, tb, a, b, gotA: [], gotB: [], downA: [], downB: [], sentA, sentB, bAddress: hostB }
  attach(w, a, w.gotA, w.downA, o.keep ?? true)
  attach(w, b, w.gotB, w.downB, o.keep ?? true)
  return w
}

export function attach(_w: World, e: Endpoint, got: Msg[], down: Down[], keep = true): void {
  e.on('message', (data: Uint8Array, session: Session, channel: number, delivery: number) => {
    got.push({ data: keep ? Buffer.from(data) : (data as Buffer), session, channel, delivery })
  })
  e.on('session-down', (session: Session, reason: string, undelivered: UndeliveredMessage[]) => {
    down.push({ session, reason, undelivered })
  })
}

/** Let promise callbacks run (FakeClock callbacks are synchronous). */
export function ticks(n = 3): Promise<void> {
  return new Promise((resolve) => {
    let left = n
    const step = (): void => { if (--left <= 0) resolve(); else setImmediate(step) }
    setImmediate(step)
  })
}

/** Connect a → b; returns both sides' sessions. */
export async function connect(w: World, maxMs = 10000): Promise<{ sa: Session, sb: Session }> {
  let sb: Session | undefined
  const onSession = (s: Session): void => { sb = s }
  w.b.once('session', onSession)
  let sa: Session | undefined
  let err: unknown
  w.a.connect(w.bAddress, B.port).then((s) => { sa = s }, (e) => { err = e })
  for (let i = 0; i < maxMs && (sa === undefined || sb === undefined) && err === undefined; i++) {
    w.clock.advance(1)
    await ticks(1)
  }
  if (err !== undefined) throw err
  if (sa === undefined || sb === undefined) throw new Error('no session')
  return { sa, sb }
}

/** Drive the clock in `step` ms increments until `pred()` (with microtask turns). */
export async function driveUntil(w: World, pred: () => boolean, maxMs: number, step = 1): Promise<boolean> {
  for (let t = 0; t < maxMs; t += step) {
    if (pred()) return true
    w.clock.advance(step)
    await ticks(1)
  }
  return pred()
}

export function sumDropped(e: Endpoint): number {
  let n = 0
  for (const v of Object.values(e.stats().dropped)) n += v
  return n
}

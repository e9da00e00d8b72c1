// The simulation matrix runner: one sender, one receiver, seeded SimNetwork
// conditions, ≥100,000 messages of mixed sizes across 4 channels and all 4
// delivery modes. Every delivery is checked as it happens; the end state is
// checked after both sides close.
import { Delivery, encodeFrameEntry, FrameType } from '../../lib/wire/codec.js'
import { createRng, type LinkConditions } from '../../lib/testing.js'
import type { Session } from '../../lib/endpoint.js'
import { B, connect, world } from './helpers.js'

export interface CaseResult {
  messages: number
  reliable: number
  reliableDelivered: number
  reliableDuplicates: number
  orderViolations: number
  sequencedBackwards: number
  unreliableDuplicates: number
  corrupt: number
  unreliableDelivered: number
  unreliableSent: number
  fragmented: number
  datagramsSent: number
  neededDatagrams: number
  bound: number
  simMs: number
  wallMs: number
  endState: Record<string, number>
  retransmitted: number
  spuriousLosses: number
}

const CHANNELS = [0, 3, 9, 15]
const MAX_PAYLOAD = 1200 - 22 // insecure endpoint: maxDatagram − DATA header

function sizeOf(r: () => number, delivery: number): number {
  const x = r()
  const min = delivery === Delivery.RELIABLE_ORDERED ? 1 : 4
  if (x < 0.7) return min + Math.floor(r() * (64 - min))
  if (x < 0.95) return 64 + Math.floor(r() * 960)
  return 1024 + Math.floor(r() * 2049) // up to 3 KiB: fragmented above 1018
}

function fill(buf: Buffer, id: number): void {
  if (buf.length >= 4) buf.writeUInt32LE(id, 0)
  for (let i = buf.length >= 4 ? 4 : 0; i < buf.length; i++) buf[i] = (id + i * 31) & 0xff
}

function intact(buf: Uint8Array, id: number, size: number): boolean {
  if (buf.length !== size) return false
  if (size >= 4 && (buf[0] | (buf[1] << 8) | (buf[2] << 16) | (buf[3] << 24)) >>> 0 !== id) return false
  for (let i = size >= 4 ? 4 : 0; i < size; i++) if (buf[i] !== ((id + i * 31) & 0xff)) return false
  return true
}

/** Size of a DATA frame entry carrying `len` bytes (as the connection encodes it). */
function entrySize(len: number, fragmented: boolean, channel: number, delivery: number): number {
  return encodeFrameEntry({
    type: FrameType.DATA, channel, delivery, sequence: 0xffffffff, data: Buffer.alloc(len),
    ...(fragmented ? { fragmentIndex: 1, fragmentCount: 2 } : {}),
  }).length
}

export async function runCase(link: Partial<LinkConditions>, seed: number, messages = 100_000): Promise<CaseResult> {
  const started = performance.now()
  const loss = link.loss ?? 0
  // Handshake on a clean path (handshake loss has its own tests), then the case's conditions.
  const w = world({ link: { delayMs: link.delayMs ?? 0 }, seed, keep: false })
  const { sa, sb } = await connect(w)
  w.net.configure(link)
  const r = createRng(seed * 7919 + 1)
  const fragSize = MAX_PAYLOAD - 160
  // Plan every message up front.
  const sizes = new Uint16Array(messages)
  const chans = new Uint8Array(messages)
  const modes = new Uint8Array(messages)
  const deliveredCount = new Uint8Array(messages)
  const streams = new Map<number, number[]>() // ordered: ids in send order per channel
  const streamPos = new Map<number, number>()
  const lastSequenced = new Map<number, number>()
  let needBytes = 0
  let reliable = 0
  let fragmented = 0
  for (let id = 0; id < messages; id++) {
    const delivery = Math.floor(r() * 4)
    const channel = CHANNELS[Math.floor(r() * 4)]
    const size = sizeOf(r, delivery)
    sizes[id] = size
    chans[id] = channel
    modes[id] = delivery
    if (delivery >= Delivery.RELIABLE_UNORDERED) reliable++
    if (delivery === Delivery.RELIABLE_ORDERED) {
      let s = streams.get(channel)
      if (s === undefined) streams.set(channel, s = [])
      s.push(id)
    }
    if (size > fragSize) {
      fragmented++
      const n = Math.ceil(size / fragSize)
      needBytes += (n - 1) * entrySize(fragSize, true, channel, delivery) + entrySize(size - (n - 1) * fragSize, true, channel, delivery)
    } else {
      needBytes += entrySize(size, false, channel, delivery)
    }
  }
  const res = {
    reliableDelivered: 0, reliableDuplicates: 0, orderViolations: 0, sequencedBackwards: 0,
    unreliableDuplicates: 0, corrupt: 0, unreliableDelivered: 0,
  }
  w.b.on('message', (data: Uint8Array, _s: Session, channel: number, delivery: number) => {
    let id: number
    if (delivery === Delivery.RELIABLE_ORDERED) {
      const pos = streamPos.get(channel) ?? 0
      streamPos.set(channel, pos + 1)
      id = streams.get(channel)![pos]
      if (id === undefined) { res.orderViolations++; return }
      if (data.length >= 4 && (data[0] | (data[1] << 8) | (data[2] << 16) | (data[3] << 24)) >>> 0 !== id) {
        res.orderViolations++
        return
      }
    } else {
      id = (data[0] | (data[1] << 8) | (data[2] << 16) | (data[3] << 24)) >>> 0
      if (id >= messages) { res.corrupt++; return }
    }
    if (!intact(data, id, sizes[id]) || chans[id] !== channel || modes[id] !== delivery) { res.corrupt++; return }
    if (deliveredCount[id]++ !== 0) {
      if (delivery >= Delivery.RELIABLE_UNORDERED) res.reliableDuplicates++
      else res.unreliableDuplicates++
      return
    }
    if (delivery >= Delivery.RELIABLE_UNORDERED) res.reliableDelivered++
    else res.unreliableDelivered++
    if (delivery === Delivery.UNRELIABLE_SEQUENCED) {
      const last = lastSequenced.get(channel) ?? -1
      if (id <= last) res.sequencedBackwards++
      lastSequenced.set(channel, id)
    }
  })
  const sentBefore = w.a.stats().datagramsSent
  const simStart = w.clock.now()
  let next = 0
  const BURST = 200
  const STEP = 0.25
  const limitMs = 600_000
  while (w.clock.now() - simStart < limitMs) {
    let k = 0
    while (next < messages && k < BURST && !sa.conn.congested) {
      const buf = Buffer.allocUnsafe(sizes[next])
      fill(buf, next)
      sa.send(buf, { channel: chans[next], delivery: modes[next] as Delivery })
      next++
      k++
    }
    w.clock.advance(STEP)
    if (next === messages && res.reliableDelivered === reliable && sa.conn.unackedMessages === 0) break
  }
  const simMs = w.clock.now() - simStart
  const datagramsSent = w.a.stats().datagramsSent - sentBefore
  const st = sa.stats()
  // Close: a tells b; b hears it (or idles out if the CLOSE is lost).
  sa.close()
  w.clock.runUntil(() => !sb.isOpen, 10_000)
  await w.a.close()
  await w.b.close()
  w.clock.advance(1000) // let the network drain what is still in flight
  const endState: Record<string, number> = {}
  for (const [name, s] of [['a', sa], ['b', sb]] as const) {
    const x = s.stats()
    endState[`${name}.queuedBytes`] = x.queuedBytes
    endState[`${name}.inFlight`] = x.inFlight
    endState[`${name}.bufferedBytes`] = x.bufferedBytes
    endState[`${name}.unackedMessages`] = x.unackedMessages
    endState[`${name}.reassemblies`] = s.conn.reassemblies
    endState[`${name}.open`] = s.isOpen ? 1 : 0
  }
  endState['a.sessions'] = w.a.sessions().length
  endState['b.sessions'] = w.b.sessions().length
  endState['clock.pending'] = w.clock.pending()
  endState['net.inFlight'] = w.net.inFlight
  const needed = Math.ceil(needBytes / MAX_PAYLOAD)
  void B
  return {
    messages, reliable, ...res, unreliableSent: messages - reliable, fragmented,
    datagramsSent, neededDatagrams: needed, bound: 1.5 * needed / (1 - loss),
    simMs, wallMs: performance.now() - started, endState,
    retransmitted: st.framesRetransmitted, spuriousLosses: st.spuriousLosses,
  }
}

export const ZERO_END_STATE: Record<string, number> = {
  'a.queuedBytes': 0, 'a.inFlight': 0, 'a.bufferedBytes': 0, 'a.unackedMessages': 0, 'a.reassemblies': 0, 'a.open': 0,
  'b.queuedBytes': 0, 'b.inFlight': 0, 'b.bufferedBytes': 0, 'b.unackedMessages': 0, 'b.reassemblies': 0, 'b.open': 0,
  'a.sessions': 0, 'b.sessions': 0, 'clock.pending': 0, 'net.inFlight': 0,
}

/** Run one matrix case as a tap subtest with the exact assertions. */
export function matrixCase(
  t: { test(name: string, fn: (t: any) => Promise<void>): unknown },
  name: string, link: Partial<LinkConditions>, seed: number, opts: { allUnreliable?: boolean } = {},
): void {
  t.test(name, async (t) => {
    const r = await runCase({ delayMs: 0.5, ...link }, seed)
    t.comment(`${name}: ${r.messages} messages (${r.fragmented} fragmented), datagrams sent ${r.datagramsSent} ` +
      `(needed ${r.neededDatagrams}, bound ${Math.floor(r.bound)}, ratio ${(r.datagramsSent / r.neededDatagrams).toFixed(3)}), ` +
      `retransmitted ${r.retransmitted}, spurious ${r.spuriousLosses}, unreliable ${r.unreliableDelivered}/${r.unreliableSent}, ` +
      `sim ${r.simMs} ms, wall ${r.wallMs.toFixed(0)} ms`)
    t.equal(r.messages >= 100_000, true)
    t.equal(r.fragmented > 1000, true, 'some messages were fragmented')
    t.equal(r.reliableDelivered, r.reliable, 'every reliable message delivered')
    t.equal(r.reliableDuplicates, 0, 'no reliable message delivered twice')
    t.equal(r.orderViolations, 0, 'ordered channels in order')
    t.equal(r.sequencedBackwards, 0, 'sequenced never goes backwards')
    t.equal(r.unreliableDuplicates, 0, 'unreliable never duplicated')
    t.equal(r.corrupt, 0, 'every delivered message intact, on its channel and mode')
    if (opts.allUnreliable === true) t.equal(r.unreliableDelivered, r.unreliableSent, 'nothing lost: every unreliable message arrived')
    t.equal(r.datagramsSent <= r.bound, true, `datagrams sent ${r.datagramsSent} ≤ 1.5 × ${r.neededDatagrams} / (1 − loss) = ${Math.floor(r.bound)}`)
    t.same(r.endState, ZERO_END_STATE, 'no state left after both sides close')
  })
}

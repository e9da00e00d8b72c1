/**
 * One process of the endpoint benchmark, driven by `bench/endpoint.ts` over
 * IPC. Each command makes this process one side of one case:
 *
 *   raw-echo / raw-ping        node:dgram ping-pong (the baseline)
 *   raw-aead-echo / raw-aead-ping
 *                              the same ping-pong with every datagram sealed
 *                              and opened by a PacketProtector: the floor of
 *                              the protected endpoint's RTT (no protocol, only
 *                              the AEAD)
 *   aead-stats                 open failures of this process's raw-aead
 *                              protector
 *   ep-echo / ep-ping          endpoint ping-pong on a reliable-ordered channel
 *   ep-sink / ep-flood         one-way reliable-ordered stream; the sink checks
 *                              every message (sequence, length, content marks)
 *   cpu / heap                 process.cpuUsage() and heap after a full GC
 *
 * Replies carry `ev`. Latencies are measured here with process.hrtime and
 * summarised here, so only summaries cross IPC.
 */
import { createHash } from 'node:crypto'
import * as dgram from 'node:dgram'
import { Delivery, Endpoint, type Session } from '../../lib/index.js'
import { PacketProtector, TAG_LENGTH } from '../../lib/security/aead.js'
import { summarize, type Summary } from '../harness/stats.js'

type Cmd = { cmd: string, [k: string]: unknown }

const reply = (m: Record<string, unknown>): void => { process.send?.(m) }
const fail = (err: unknown): void => {
  reply({ ev: 'error', error: String((err as Error)?.stack ?? err) })
}
process.on('uncaughtException', (err) => { fail(err); process.exit(1) })
process.on('unhandledRejection', (err) => { fail(err); process.exit(1) })
process.on('disconnect', () => process.exit(0))

const ORDERED = { channel: 0, delivery: Delivery.RELIABLE_ORDERED }
const nowNs = (): bigint => process.hrtime.bigint()

/** Template of a benchmark message: byte i = i & 0xff, seq in bytes 0..3, seq & 0xff in the last byte. */
function template (size: number): Buffer {
  const b = Buffer.allocUnsafe(size)
  for (let i = 0; i < size; i++) b[i] = i & 0xff
  return b
}

function message (tpl: Buffer, seq: number): Buffer {
  const b = Buffer.allocUnsafe(tpl.length)
  tpl.copy(b)
  b.writeUInt32LE(seq >>> 0, 0)
  b[b.length - 1] = seq & 0xff
  return b
}

function endpointOptions (m: Cmd): { keys: Buffer[] } | { insecure: true } {
  return typeof m.key === 'string' ? { keys: [Buffer.from(m.key, 'hex')] } : { insecure: true }
}

let ep: Endpoint | null = null
let raw: dgram.Socket | null = null

async function rawSocket (): Promise<dgram.Socket> {
  const s = raw = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 })
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve))
  return s
}

async function rawEcho (): Promise<void> {
  const s = await rawSocket()
  s.on('message', (data, rinfo) => s.send(data, rinfo.port, rinfo.address))
  reply({ ev: 'ready', port: s.address().port })
}

/**
 * Raw node:dgram ping-pong: `send` puts one message on the wire (the clock
 * starts before it), `open` turns a reply back into the message (null: it
 * did not authenticate). Returns the RTT samples in µs and the bad replies.
 */
async function rawPingLoop (m: Cmd, s: dgram.Socket, send: (b: Buffer) => void,
  open: (data: Buffer) => Buffer | null): Promise<{ samples: Float64Array, bad: number }> {
  const size = m.size as number
  const total = (m.count as number) + (m.warmup as number)
  const tpl = template(size)
  const samples = new Float64Array(m.count as number)
  let seq = 0
  let sentAt = 0n
  let bad = 0
  await new Promise<void>((resolve) => {
    const ping = (): void => {
      const b = message(tpl, seq)
      sentAt = nowNs()
      send(b)
    }
    s.on('message', (data) => {
      const plain = open(data)
      const rtt = Number(nowNs() - sentAt) / 1000
      if (plain === null || plain.length !== size || plain.readUInt32LE(0) !== seq) bad++
      const i = seq - (m.warmup as number)
      if (i >= 0) samples[i] = rtt
      if (++seq === total) resolve()
      else ping()
    })
    // A lost datagram (rare on loopback) would stall the loop: resend after a
    // while (with AEAD under a new packet number: the protector refuses to reuse one).
    const guard = setInterval(() => { if (Number(nowNs() - sentAt) > 200e6) ping() }, 200)
    guard.unref()
    ping()
  })
  s.close()
  raw = null
  return { samples, bad }
}


async function rawPing (m: Cmd): Promise<void> {
  const s = await rawSocket()
  const { samples, bad } = await rawPingLoop(m, s, (b) => s.send(b, m.port as number, '127.0.0.1'), (data) => data)
  reply({ ev: 'rtt', summary: summarize(samples), bad })
}

// ---- raw + AEAD: the ping-pong above, each datagram sealed and opened ----

/**
 * Header of a raw+AEAD datagram: 20 bytes, about the size of the endpoint's
 * DATA header (lib/wire/fast.ts: magic, version, type, connection id, packet
 * number, payload tag), with the packet number at AEAD_PN_OFFSET so the
 * receiver can read it back. Its first AEAD_AAD bytes are the associated
 * data.
 */
const AEAD_HEADER = 20
const AEAD_AAD = 19
const AEAD_PN_OFFSET = 15
// Field tags and values as protobuf lays them out: magic, version, type, connection id, packet number, payload's tag.
const HEADER_TEMPLATE = Buffer.from('0d' + '57524d4d' + '10' + '01' + '18' + '02' + '25' + '7a3a6b4c' + '2d' + '00000000' + '7a', 'hex')

function aeadHeader (pn: number): Buffer {
  const h = Buffer.allocUnsafe(AEAD_HEADER)
  HEADER_TEMPLATE.copy(h)
  h.writeUInt32BE(pn, AEAD_PN_OFFSET)
  return h
}

/** The protector of the current raw-aead side (for `aead-stats`). */
let aead: PacketProtector | null = null

/**
 * This side's protector, as the endpoint's sessions make them: the key for
 * ping → echo is the command's key, echo → ping a hash of it (two traffic
 * keys, like a handshake's).
 */
function protectorFor (m: Cmd, side: 'ping' | 'echo'): PacketProtector {
  const toEcho = Buffer.from(m.key as string, 'hex')
  const toPing = createHash('sha256').update(toEcho).digest()
  return aead = side === 'ping' ? new PacketProtector(toEcho, toPing) : new PacketProtector(toPing, toEcho)
}

/**
 * Seal `plaintext` under the next packet number into a new buffer and send
 * header ‖ (ciphertext ‖ tag) as chunks of one datagram, as lib/endpoint.ts does.
 */
function sealAndSend (s: dgram.Socket, p: PacketProtector, pn: number, plaintext: Uint8Array, port: number, address: string): void {
  const header = aeadHeader(pn)
  s.send([header, p.seal(header.subarray(0, AEAD_AAD), pn, plaintext)], port, address)
}

/**
 * Open a raw+AEAD datagram in place (as lib/endpoint.ts does); null if it
 * does not authenticate (counted in the protector's openFailures).
 */
function openDatagram (p: PacketProtector, data: Buffer): Buffer | null {
  if (data.length < AEAD_HEADER + TAG_LENGTH) return p.open(data, 0, data.subarray(0, 0))
  return p.open(data.subarray(0, AEAD_AAD), data.readUInt32BE(AEAD_PN_OFFSET), data.subarray(AEAD_HEADER),
    data.subarray(AEAD_HEADER, data.length - TAG_LENGTH))
}

async function rawAeadEcho (m: Cmd): Promise<void> {
  const p = protectorFor(m, 'echo')
  const s = await rawSocket()
  let pn = 0
  s.on('message', (data, rinfo) => {
    // A datagram that fails to open is counted and still answered (with its
    // ciphertext as the "plaintext"), so the ping sees a wrong reply and
    // goes on instead of stalling; the case is FAILED by the count.
    const plain = openDatagram(p, data) ?? data.subarray(Math.min(AEAD_HEADER, data.length), Math.max(AEAD_HEADER, data.length - TAG_LENGTH))
    sealAndSend(s, p, pn++, plain, rinfo.port, rinfo.address)
  })
  reply({ ev: 'ready', port: s.address().port })
}

async function rawAeadPing (m: Cmd): Promise<void> {
  const p = protectorFor(m, 'ping')
  const s = await rawSocket()
  let pn = 0
  // The clock starts before sealing and stops after opening: both are on
  // the round trip's path, as in the protected endpoint.
  const { samples, bad } = await rawPingLoop(m, s, (b) => sealAndSend(s, p, pn++, b, m.port as number, '127.0.0.1'),
    (data) => openDatagram(p, data))
  reply({ ev: 'rtt', summary: summarize(samples), bad, openFailures: p.openFailures })
}

async function epEcho (m: Cmd): Promise<void> {
  const e = ep = await Endpoint.create({ address: '127.0.0.1', port: 0, ...endpointOptions(m) })
  e.on('message', (data: Uint8Array, s: Session, channel: number, delivery: Delivery) => {
    s.send(data, { channel, delivery })
  })
  reply({ ev: 'ready', port: e.port })
}

async function epPing (m: Cmd): Promise<void> {
  const size = m.size as number
  const warmup = m.warmup as number
  const total = (m.count as number) + warmup
  const e = ep = await Endpoint.create({ address: '127.0.0.1', port: 0, ...endpointOptions(m) })
  const s = await e.connect('127.0.0.1', m.port as number)
  const tpl = template(size)
  const samples = new Float64Array(m.count as number)
  let seq = 0
  let sentAt = 0n
  let bad = 0
  await new Promise<void>((resolve) => {
    const ping = (): void => {
      const b = message(tpl, seq)
      sentAt = nowNs()
      s.send(b, ORDERED)
    }
    e.on('message', (data: Uint8Array) => {
      const rtt = Number(nowNs() - sentAt) / 1000
      if (data.length !== size || Buffer.from(data.buffer, data.byteOffset, 4).readUInt32LE(0) !== seq) bad++
      const i = seq - warmup
      if (i >= 0) samples[i] = rtt
      if (++seq === total) resolve()
      else ping()
    })
    ping()
  })
  const stats = s.stats()
  await e.close()
  ep = null
  reply({
    ev: 'rtt', summary: summarize(samples), bad, retransmitted: stats.framesRetransmitted, lost: stats.packetsLost,
    spurious: stats.spuriousLosses, rtoExpirations: stats.rtoExpirations, packetsSent: stats.packetsSent,
  })
}

/** Sink state of the current flood. */
interface Sink {
  size: number
  expect: number
  next: number
  bad: number
  firstBad: string
  firstNs: bigint
  lastNs: bigint
}
let sink: Sink | null = null

async function epSink (m: Cmd): Promise<void> {
  const e = ep = await Endpoint.create({ address: '127.0.0.1', port: 0, ...endpointOptions(m) })
  e.on('message', (data: Uint8Array) => {
    const k = sink
    if (k === null) return
    const seq = k.next
    if (seq === 0) k.firstNs = nowNs()
    const n = data.length
    if (n !== k.size || (data[0]! | (data[1]! << 8) | (data[2]! << 16) | (data[3]! << 24)) >>> 0 !== seq >>> 0 ||
      data[n - 1] !== (seq & 0xff) || (n > 5 && data[4] !== 4)) {
      if (k.bad++ === 0) k.firstBad = `message ${seq}: ${n} bytes, seq field ${n >= 4 ? Buffer.from(data).readUInt32LE(0) : -1}`
    }
    k.next = seq + 1
    if (k.next === k.expect) {
      k.lastNs = nowNs()
      reply({ ev: 'sink-done', received: k.next, bad: k.bad, firstBad: k.firstBad, firstNs: String(k.firstNs), lastNs: String(k.lastNs) })
    }
  })
  reply({ ev: 'ready', port: e.port })
}

/** Expect `expect` messages of `size` bytes next (sequence numbers continue across floods). */
function sinkExpect (m: Cmd): void {
  const prev = sink
  sink = {
    size: m.size as number, expect: (prev?.next ?? 0) + (m.count as number), next: prev?.next ?? 0,
    bad: 0, firstBad: '', firstNs: 0n, lastNs: 0n,
  }
  if (prev !== null && prev.size !== sink.size) throw new Error('sink: size changed between floods')
  reply({ ev: 'sink-ready' })
}

let flooder: { session: Session, seq: number } | null = null

async function epFlood (m: Cmd): Promise<void> {
  if (flooder === null) {
    const e = ep = await Endpoint.create({ address: '127.0.0.1', port: 0, ...endpointOptions(m) })
    flooder = { session: await e.connect('127.0.0.1', m.port as number), seq: 0 }
  }
  const f = flooder
  const s = f.session
  const tpl = template(m.size as number)
  const end = f.seq + (m.count as number)
  const startNs = nowNs()
  let waits = 0
  // Batch: send until backpressure, then wait for drain.
  while (f.seq < end) {
    let ok = true
    while (ok && f.seq < end) ok = s.send(message(tpl, f.seq++), ORDERED)
    if (!ok) {
      waits++
      await s.waitDrain()
    }
  }
  const st = s.stats()
  reply({
    ev: 'flood-done', sent: f.seq, startNs: String(startNs), endNs: String(nowNs()), drainWaits: waits,
    packetsSent: st.packetsSent, retransmitted: st.framesRetransmitted, lost: st.packetsLost,
    spurious: st.spuriousLosses, rtoExpirations: st.rtoExpirations, srttMs: st.srtt, rtoMs: st.rto,
  })
}

process.on('message', (m: Cmd) => {
  const run = async (): Promise<void> => {
    switch (m.cmd) {
      case 'raw-echo': return rawEcho()
      case 'raw-ping': return rawPing(m)
      case 'raw-aead-echo': return rawAeadEcho(m)
      case 'raw-aead-ping': return rawAeadPing(m)
      case 'aead-stats':
        return reply({ ev: 'aead-stats', openFailures: aead?.openFailures ?? 0 })
      case 'ep-echo': return epEcho(m)
      case 'ep-ping': return epPing(m)
      case 'ep-sink': return epSink(m)
      case 'sink-expect': return sinkExpect(m)
      case 'ep-flood': return epFlood(m)
      case 'cpu': {
        const c = process.cpuUsage()
        return reply({ ev: 'cpu', user: c.user, system: c.system })
      }
      case 'heap': {
        const gc = (globalThis as { gc?: () => void }).gc
        if (gc !== undefined) { gc(); gc() }
        const mem = process.memoryUsage()
        return reply({ ev: 'heap', heapUsed: mem.heapUsed, rss: mem.rss, gc: gc !== undefined })
      }
      case 'ep-stats':
        return reply({ ev: 'ep-stats', endpoint: ep?.stats() ?? null, sessions: ep?.sessions().map((s) => s.stats()) ?? [] })
      case 'exit':
        // A clean exit, so --cpu-prof can write its profile.
        raw?.close()
        await ep?.close()
        process.exit(0)
        break
      default:
        throw new Error(`unknown command ${m.cmd}`)
    }
  }
  run().catch((err) => fail(err))
})

reply({ ev: 'started' })
export type { Summary }

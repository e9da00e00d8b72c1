/**
 * Fuzz a live keyed endpoint over real UDP on 127.0.0.1 while it carries real
 * traffic.
 *
 *   npm run fuzz -- [--count N (100000)] [--seed S (1)] [--messages M (20000)] [--peer-share F (0.25)] [--json FILE]
 *
 * A victim endpoint and a real peer (same network key) open a session; the
 * peer sends `messages` reliable ordered messages (some fragmented) and the
 * victim answers every tenth. Meanwhile `count` hostile datagrams are fired
 * at the victim: random bytes, valid-magic garbage, truncations, bit flips,
 * splices and replays of real captured packets, huge declared lengths and
 * overlong varints, crafted handshake packets (forged cookies and proofs) and
 * crafted DATA packets naming the live session. Most come from attacker
 * sockets; a share (`--peer-share`) is sent through the real peer's own socket,
 * so they arrive from the session's address and reach the replay window and
 * the AEAD.
 *
 * Checks: no crash, no unhandled error or rejection, no `'error'` event, the
 * real traffic delivered exactly once, in order and intact in both
 * directions, one session at the end, heap growth bounded, and no more bytes
 * sent back to the attacker sockets than they sent. Prints one summary line;
 * exits 1 when a check fails.
 *
 * @module
 */
import { createSocket, type Socket } from 'node:dgram'
import { writeFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Endpoint, type Session } from '../lib/endpoint.js'
import { keyId } from '../lib/security/keys.js'
import type { DatagramHandler, Transport } from '../lib/transport/transport.js'
import { bindUdp } from '../lib/transport/udp.js'
import { createRng } from '../lib/transport/sim.js'
import { encodePacket, MAGIC, PacketType, VERSION } from '../lib/wire/codec.js'

/** Options of {@link runFuzz}. */
export interface FuzzOptions {
  /** Hostile datagrams to fire. Default 100000. */
  count?: number
  /** Seed of the generator. Default 1. */
  seed?: number
  /** Real reliable messages from the peer to the victim. Default 20000. */
  messages?: number
  /** Share of hostile datagrams sent from the real peer's socket, 0..1. Default 0.25. */
  peerShare?: number
  /** Attacker sockets (distinct source ports). Default 4. */
  attackers?: number
  /** Hostile datagrams per event-loop turn (libuv reads at most 32 datagrams per socket per poll: larger bursts overflow the receive buffer). Default 16. */
  batch?: number
  /** Give up waiting for the real traffic after this long, ms. Default 120000. */
  timeoutMs?: number
  /** The network key. Default a fixed test key. */
  key?: Uint8Array
}

/** What a campaign did and saw. */
export interface FuzzReport {
  seed: number
  /** Hostile datagrams fired (all sources). */
  fired: number
  /** Of which through the real peer's socket. */
  firedFromPeer: number
  /** Hostile bytes fired. */
  bytesFired: number
  /** Hostile datagrams by generator. */
  byKind: Record<string, number>
  /** Hostile bytes fired from attacker sockets only. */
  attackerBytesFired: number
  /** Datagrams the victim received (hostile and real). */
  victimReceived: number
  /**
   * Hostile datagrams that reached the victim (the kernel drops some when its
   * receive buffer is full); the peer-sourced share is estimated as what came
   * from the peer's port beyond the datagrams the peer's endpoint sent.
   */
  hostileArrived: number
  /** The victim's drop counters by reason. */
  dropped: Record<string, number>
  /** Datagrams and bytes the victim sent to attacker sockets. */
  repliesToAttackers: number
  replyBytesToAttackers: number
  /** Largest reply to an attacker socket, bytes. */
  largestReply: number
  /** Real messages sent, delivered to the victim, delivered in order and intact. */
  messages: number
  delivered: number
  inOrder: boolean
  /** Victim → peer answers expected and received (in order and intact). */
  answersExpected: number
  answers: number
  /** Sessions on the victim at the end, and `'session'` events it emitted. */
  sessionsAtEnd: number
  sessionEvents: number
  /** Auth failures counted by the real session on the victim. */
  sessionAuthFailures: number
  /** Uncaught exceptions, unhandled rejections, `'error'` events. */
  errors: string[]
  /** `heapUsed` before the campaign and after it (after a full GC when available), bytes. */
  heapBefore: number
  heapAfter: number
  /** Whether a GC was forced before both heap readings. */
  gcForced: boolean
  elapsedMs: number
}

const DEFAULT_KEY = Buffer.from('warpmesh-fuzz-key-0123456789abcdef-fixed!', 'utf8')
const MAGIC_PREFIX = Buffer.from([0x0d, MAGIC & 0xff, (MAGIC >>> 8) & 0xff, (MAGIC >>> 16) & 0xff, MAGIC >>> 24])

/** Records the datagrams a transport sends (the first `limit`), and can send raw bytes from its socket. */
class Tap implements Transport {
  readonly captured: Buffer[] = []
  /** Datagrams received, by source port. */
  readonly receivedFrom = new Map<number, number>()
  constructor(readonly inner: Transport, readonly limit: number) {}
  get family(): 'IPv4' | 'IPv6' { return this.inner.family }
  get address(): string { return this.inner.address }
  get port(): number { return this.inner.port }
  send(chunks: readonly Uint8Array[], port: number, address: string): void {
    if (this.captured.length < this.limit) this.captured.push(Buffer.concat(chunks))
    this.inner.send(chunks, port, address)
  }

  setHandler(handler: DatagramHandler): void {
    const counts = this.receivedFrom
    this.inner.setHandler((data, port, address) => {
      counts.set(port, (counts.get(port) ?? 0) + 1)
      handler(data, port, address)
    })
  }

  close(): Promise<void> { return this.inner.close() }
}

/** Hostile datagram generators over a seeded PRNG. */
export class Mutator {
  readonly #rng: () => number
  /** Real packets to mutate (captured from both sides). */
  readonly pool: Buffer[] = []
  /** The victim's connection id of the live session (crafted DATA names it). */
  victimConnectionId = 0
  /** A key id the victim knows. */
  realKeyId = 0

  constructor(seed: number) {
    this.#rng = createRng(seed)
  }

  /** Uniform integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.#rng() * (hi - lo + 1))
  }

  chance(p: number): boolean {
    return this.#rng() < p
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n)
    let i = 0
    for (; i + 4 <= n; i += 4) b.writeUInt32LE((this.#rng() * 0x100000000) >>> 0, i)
    for (; i < n; i++) b[i] = (this.#rng() * 256) | 0
    return b
  }

  /** A datagram length: mostly small, sometimes up to 1500, rarely up to 65507. */
  length(): number {
    const r = this.#rng()
    return r < 0.7 ? this.int(0, 200) : r < 0.995 ? this.int(200, 1500) : this.int(1500, 65507)
  }

  pick(): Buffer {
    return this.pool[this.int(0, this.pool.length - 1)]!
  }

  /** One hostile datagram and the name of its generator. */
  next(): [string, Buffer] {
    const hasPool = this.pool.length > 0
    const r = this.int(0, hasPool ? 10 : 4)
    switch (r) {
      case 0: return ['random', this.bytes(this.length())]
      case 1: return ['magic-garbage', Buffer.concat([MAGIC_PREFIX, this.bytes(this.length())])]
      case 2: return ['huge-length', this.hugeLength()]
      case 3: return ['crafted-handshake', this.craftHandshake()]
      case 4: return ['crafted-data', this.craftData()]
      case 5: {
        const p = this.pick()
        return ['truncated', p.subarray(0, this.int(0, Math.max(0, p.length - 1)))]
      }
      case 6:
      case 7: {
        const p = Buffer.from(this.pick())
        const flips = this.chance(0.5) ? 1 : this.int(2, 16)
        for (let i = 0; i < flips && p.length > 0; i++) {
          const bit = this.int(0, p.length * 8 - 1)
          p[bit >>> 3] ^= 1 << (bit & 7)
        }
        return ['bit-flip', p]
      }
      case 8: {
        const a = this.pick()
        const b = this.pick()
        return ['splice', Buffer.concat([a.subarray(0, this.int(0, a.length)), b.subarray(this.int(0, b.length))])]
      }
      case 9: {
        // Real bytes with a random run overwritten, or a copy with bytes inserted.
        const p = Buffer.from(this.pick())
        if (this.chance(0.5) && p.length > 0) {
          const at = this.int(0, p.length - 1)
          this.bytes(this.int(1, Math.min(16, p.length - at))).copy(p, at)
          return ['overwrite', p]
        }
        const at = this.int(0, p.length)
        return ['insert', Buffer.concat([p.subarray(0, at), this.bytes(this.int(1, 32)), p.subarray(at)])]
      }
      default: return ['replay', this.pick()]
    }
  }

  /** A varint, possibly overlong (up to 11 bytes, the last ones continuation-only). */
  varint(v: number, overlong = false): Buffer {
    const out: number[] = []
    let x = v
    while (x >= 0x80) {
      out.push((x % 128) | 0x80)
      x = Math.floor(x / 128)
    }
    out.push(x)
    if (overlong) {
      out[out.length - 1] |= 0x80
      const extra = this.int(1, 11 - out.length > 0 ? 11 - out.length : 1)
      for (let i = 0; i < extra - 1; i++) out.push(0x80)
      out.push(this.chance(0.5) ? 0x00 : 0xff)
    }
    return Buffer.from(out)
  }

  /** A header followed by a length-delimited field whose declared length is huge (or a broken varint). */
  hugeLength(): Buffer {
    const type = this.int(1, 6)
    const header = encodePacket({ magic: MAGIC, version: VERSION, type, connectionId: this.chance(0.5) ? this.victimConnectionId : this.int(0, 0xffffffff) })
    const declared = [0x7fffffff, 0xffffffff, 2 ** 35, 2 ** 50, 1 << 28, 65536, 1201][this.int(0, 6)]!
    const tail = this.bytes(this.int(0, 64))
    switch (this.int(0, 3)) {
      case 0: // payload (field 15)
        return Buffer.concat([header, Buffer.from([0x7a]), this.varint(declared, this.chance(0.3)), tail])
      case 1: // handshake (field 6)
        return Buffer.concat([header, Buffer.from([0x32]), this.varint(declared, this.chance(0.3)), tail])
      case 2: { // a handshake whose nonce / cookie / proof / padding declares a huge length
        const inner = Buffer.concat([Buffer.from([[0x1a, 0x22, 0x2a, 0x72][this.int(0, 3)]!]), this.varint(declared), tail])
        return Buffer.concat([header, Buffer.from([0x32]), this.varint(inner.length), inner])
      }
      default: // an unknown field with a huge length, or a varint field that never ends
        return this.chance(0.5)
          ? Buffer.concat([header, Buffer.from([0x52]), this.varint(declared), tail])
          : Buffer.concat([header, Buffer.from([0x10]), Buffer.alloc(this.int(10, 40), 0xff)])
    }
  }

  /** A HELLO/CHALLENGE/CONNECT/ACCEPT/REJECT with random (sometimes oversized) fields. */
  craftHandshake(): Buffer {
    const type = this.int(1, 6) === 5 ? PacketType.CONNECT : [1, 2, 3, 4, 6][this.int(0, 4)]!
    const field = (): Buffer => this.bytes(this.chance(0.8) ? [32, 20, 16][this.int(0, 2)]! : this.int(0, 80))
    const hs = {
      connectionId: this.int(0, 0xffffffff),
      epoch: this.int(0, 0xffffffff),
      nonce: field(),
      cookie: this.chance(0.7) ? field() : undefined,
      proof: this.chance(0.6) ? field() : undefined,
      keyId: this.chance(0.5) ? this.realKeyId : this.int(0, 0xffffffff),
      maxDatagram: this.int(0, 70000),
      reason: this.int(0, 9),
      padding: this.chance(0.5) ? Buffer.alloc(this.int(0, 1100)) : undefined,
    }
    return Buffer.from(encodePacket({
      magic: MAGIC, version: this.chance(0.95) ? VERSION : this.int(0, 3), type,
      connectionId: this.chance(0.3) ? this.victimConnectionId : this.int(0, 0xffffffff), handshake: hs as never,
    }))
  }

  /** A DATA packet, mostly naming the live session, with a random packet number and payload. */
  craftData(): Buffer {
    return Buffer.from(encodePacket({
      magic: MAGIC, version: VERSION, type: PacketType.DATA,
      connectionId: this.chance(0.8) ? this.victimConnectionId : this.int(0, 0xffffffff),
      packetNumber: this.chance(0.5) ? this.int(0, 5000) : this.int(0, 0xffffffff),
      payload: this.bytes(this.int(0, 1200)),
    }))
  }
}

/** The real message number `i`: 4-byte index, then deterministic filler; every 997th is 3000 bytes (fragmented). */
function realMessage(i: number): Buffer {
  const n = i % 997 === 0 ? 3000 : 4 + ((i * 7919) % 600)
  const b = Buffer.allocUnsafe(n)
  b.writeUInt32LE(i, 0)
  for (let k = 4; k < n; k++) b[k] = (i + k) & 0xff
  return b
}

function checkMessage(d: Uint8Array, i: number): boolean {
  const want = realMessage(i)
  return d.length === want.length && Buffer.compare(Buffer.from(d.buffer, d.byteOffset, d.length), want) === 0
}

function answer(i: number): Buffer {
  const b = Buffer.alloc(16, i & 0xff)
  b.writeUInt32LE(i, 0)
  return b
}

let gcFn: (() => void) | null | undefined

/** A full GC if one can be had (`--expose-gc`, or enabled at run time). */
function getGc(): (() => void) | null {
  if (gcFn !== undefined) return gcFn
  const g = (globalThis as { gc?: () => void }).gc
  if (typeof g === 'function') return (gcFn = g)
  try {
    setFlagsFromString('--expose-gc')
    gcFn = runInNewContext('gc') as () => void
  } catch {
    gcFn = null
  }
  return gcFn
}

async function heapUsed(): Promise<number> {
  const gc = getGc()
  if (gc !== null) {
    gc()
    await new Promise((r) => setImmediate(r))
    gc()
  }
  return process.memoryUsage().heapUsed
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r))

/**
 * Run one campaign: see the module description. Never throws for what the
 * victim does; the report says what happened. Use {@link checkReport} for the
 * verdict.
 */
export async function runFuzz(options: FuzzOptions = {}): Promise<FuzzReport> {
  const count = options.count ?? 100_000
  const seed = options.seed ?? 1
  const messages = options.messages ?? 20_000
  const peerShare = options.peerShare ?? 0.25
  const batch = options.batch ?? 16
  const timeoutMs = options.timeoutMs ?? 120_000
  const key = options.key ?? DEFAULT_KEY
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be an integer >= 0, got ${count}`)
  if (!Number.isInteger(messages) || messages < 1) throw new RangeError(`messages must be an integer >= 1, got ${messages}`)
  if (!(peerShare >= 0 && peerShare <= 1)) throw new RangeError(`peerShare must be in [0, 1], got ${peerShare}`)

  const errors: string[] = []
  const onUncaught = (err: unknown): void => { errors.push(`uncaught: ${String((err as Error)?.stack ?? err)}`) }
  const onRejection = (err: unknown): void => { errors.push(`unhandled rejection: ${String((err as Error)?.stack ?? err)}`) }
  process.on('uncaughtException', onUncaught)
  process.on('unhandledRejection', onRejection)

  const started = performance.now()
  const victimTap = new Tap(await bindUdp({ address: '127.0.0.1', port: 0 }), 64)
  const peerTap = new Tap(await bindUdp({ address: '127.0.0.1', port: 0 }), 192)
  const victim = new Endpoint(victimTap, { keys: [key] })
  const peer = new Endpoint(peerTap, { keys: [key] })
  const attackers: Socket[] = []
  const report: FuzzReport = {
    seed, fired: 0, firedFromPeer: 0, bytesFired: 0, byKind: {}, attackerBytesFired: 0, victimReceived: 0, dropped: {},
    hostileArrived: 0, repliesToAttackers: 0, replyBytesToAttackers: 0, largestReply: 0, messages, delivered: 0, inOrder: true,
    answersExpected: Math.floor(messages / 10), answers: 0, sessionsAtEnd: 0, sessionEvents: 0, sessionAuthFailures: 0,
    errors, heapBefore: 0, heapAfter: 0, gcForced: false, elapsedMs: 0,
  }
  try {
    for (const ep of [victim, peer]) ep.on('error', (err: unknown) => errors.push(`'error' event: ${String(err)}`))
    for (let i = 0; i < (options.attackers ?? 4); i++) {
      const s = createSocket('udp4')
      s.on('error', (err) => errors.push(`attacker socket: ${String(err)}`))
      s.on('message', (msg) => {
        report.repliesToAttackers++
        report.replyBytesToAttackers += msg.length
        if (msg.length > report.largestReply) report.largestReply = msg.length
      })
      await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve))
      attackers.push(s)
    }

    // The victim checks order and content of every real message and answers every tenth.
    let victimSession: Session | null = null
    victim.on('session', (s: Session) => {
      report.sessionEvents++
      victimSession ??= s
    })
    victim.on('message', (d: Uint8Array, s: Session) => {
      if (s !== victimSession) {
        errors.push(`message from an unexpected session ${s.remote}`)
        return
      }
      if (!checkMessage(d, report.delivered)) report.inOrder = false
      report.delivered++
      if (report.delivered % 10 === 0) s.send(answer(report.delivered / 10 - 1))
    })
    peer.on('message', (d: Uint8Array) => {
      if (Buffer.compare(Buffer.from(d), answer(report.answers)) !== 0) report.inOrder = false
      report.answers++
    })

    const session = await peer.connect('127.0.0.1', victim.port)
    const mutator = new Mutator(seed)
    mutator.victimConnectionId = session.remoteId
    mutator.realKeyId = keyId(key)

    // Warm up: a little real traffic so the pool holds real DATA packets.
    let sent = 0
    const warm = Math.min(messages, 100)
    for (; sent < warm; sent++) session.send(realMessage(sent))
    const warmEnd = Date.now() + 10_000
    while (report.delivered < warm && Date.now() < warmEnd) await new Promise((r) => setTimeout(r, 1))
    mutator.pool.push(...peerTap.captured, ...victimTap.captured)

    report.gcForced = getGc() !== null
    report.heapBefore = await heapUsed()

    // Spread the real traffic over the whole campaign: as many messages per turn as keep pace with the firing.
    const perTurn = count === 0 ? messages : Math.max(1, Math.ceil((messages - sent) * batch / count))
    const sendReal = async (): Promise<void> => {
      while (sent < messages) {
        if (!session.isOpen) {
          errors.push(`real session closed: ${session.closeReason}`)
          return
        }
        if (!session.send(realMessage(sent++))) await session.waitDrain()
        if (sent % perTurn === 0) await turn()
      }
    }
    const fire = async (): Promise<void> => {
      const victimPort = victim.port
      const raw = peerTap.inner
      while (report.fired < count) {
        for (let i = 0; i < batch && report.fired < count; i++) {
          const [kind, data] = mutator.next()
          report.byKind[kind] = (report.byKind[kind] ?? 0) + 1
          report.fired++
          report.bytesFired += data.length
          if (mutator.chance(peerShare)) {
            report.firedFromPeer++
            raw.send([data], victimPort, '127.0.0.1')
          } else {
            report.attackerBytesFired += data.length
            attackers[mutator.int(0, attackers.length - 1)]!.send(data, victimPort, '127.0.0.1')
          }
        }
        await turn()
      }
    }
    await Promise.all([sendReal(), fire()])
    const end = Date.now() + timeoutMs
    while ((report.delivered < messages || report.answers < report.answersExpected) && Date.now() < end && errors.length === 0) {
      await new Promise((r) => setTimeout(r, 2))
    }
    // Let replies to the last hostile datagrams arrive.
    await new Promise((r) => setTimeout(r, 50))
    report.heapAfter = await heapUsed()
    const vs = victim.stats()
    report.victimReceived = vs.datagramsReceived
    const fromPeer = victimTap.receivedFrom.get(peer.port) ?? 0
    report.hostileArrived = vs.datagramsReceived - fromPeer + Math.max(0, fromPeer - peer.stats().datagramsSent)
    report.dropped = vs.dropped
    report.sessionsAtEnd = vs.sessions
    report.sessionAuthFailures = victimSession === null ? 0 : (victimSession as Session).stats().authFailures
  } finally {
    report.elapsedMs = performance.now() - started
    await victim.close()
    await peer.close()
    for (const s of attackers) await new Promise<void>((resolve) => s.close(() => resolve()))
    // Let a late rejection surface before the handlers go.
    await turn()
    process.off('uncaughtException', onUncaught)
    process.off('unhandledRejection', onRejection)
  }
  return report
}

/** Problems with a campaign's outcome; empty when every check passed. */
export function checkReport(r: FuzzReport, heapBoundBytes = 64 * 1024 * 1024): string[] {
  const problems: string[] = [...r.errors]
  if (r.delivered !== r.messages) problems.push(`delivered ${r.delivered} of ${r.messages} real messages`)
  if (r.answers !== r.answersExpected) problems.push(`${r.answers} of ${r.answersExpected} answers came back`)
  if (!r.inOrder) problems.push('real traffic out of order or corrupted')
  if (r.sessionsAtEnd !== 1 || r.sessionEvents !== 1) problems.push(`victim has ${r.sessionsAtEnd} sessions (${r.sessionEvents} session events), expected 1`)
  if (r.replyBytesToAttackers > r.attackerBytesFired) problems.push(`amplification: ${r.replyBytesToAttackers} bytes out for ${r.attackerBytesFired} in`)
  if (r.heapAfter - r.heapBefore > heapBoundBytes) problems.push(`heap grew ${mib(r.heapAfter - r.heapBefore)} MiB`)
  return problems
}

function mib(n: number): string {
  return (n / 1048576).toFixed(1)
}

/** One readable summary line. */
export function formatReport(r: FuzzReport): string {
  const dropped = Object.entries(r.dropped).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}=${v}`).join(' ')
  const amp = r.attackerBytesFired === 0 ? 0 : r.replyBytesToAttackers / r.attackerBytesFired
  return `fuzz seed=${r.seed}: fired ${r.fired} datagrams (${r.firedFromPeer} from the peer's address, ${mib(r.bytesFired)} MiB)` +
    ` | ${r.hostileArrived} arrived (victim received ${r.victimReceived} in all), dropped ${dropped}` +
    ` | replies to attackers ${r.repliesToAttackers} (${r.replyBytesToAttackers} B, ${amp.toFixed(4)}× of ${r.attackerBytesFired} B, largest ${r.largestReply} B)` +
    ` | delivered ${r.delivered}/${r.messages} ${r.inOrder ? 'in order' : 'OUT OF ORDER'}, answers ${r.answers}/${r.answersExpected}` +
    ` | sessions ${r.sessionsAtEnd}, session auth failures ${r.sessionAuthFailures}` +
    ` | heap ${mib(r.heapBefore)} → ${mib(r.heapAfter)} MiB${r.gcForced ? '' : ' (no gc)'}` +
    ` | errors ${r.errors.length} | ${(r.elapsedMs / 1000).toFixed(1)} s`
}

function parseArgs(argv: string[]): FuzzOptions & { json?: string } {
  const o: FuzzOptions & { json?: string } = {}
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v)
    if (v === undefined || !Number.isFinite(n)) throw new TypeError(`${flag} needs a number, got ${String(v)}`)
    return n
  }
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1]
    switch (argv[i]) {
      case '--count': o.count = num('--count', v); i++; break
      case '--seed': o.seed = num('--seed', v); i++; break
      case '--messages': o.messages = num('--messages', v); i++; break
      case '--peer-share': o.peerShare = num('--peer-share', v); i++; break
      case '--json': o.json = v; i++; break
      default: throw new TypeError(`unknown argument ${argv[i]}; expected --count N, --seed S, --messages M, --peer-share F, --json FILE`)
    }
  }
  return o
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2))
  const report = await runFuzz({ timeoutMs: 600_000, ...options })
  console.log(formatReport(report))
  if (options.json !== undefined) writeFileSync(options.json, JSON.stringify(report, null, 2))
  const problems = checkReport(report)
  for (const p of problems) console.error(`FAIL: ${p}`)
  process.exitCode = problems.length === 0 ? 0 : 1
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err)
    process.exitCode = 1
  })
}

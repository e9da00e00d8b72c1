/**
 * Cost of warpmesh's security primitives on this machine: the AEAD's seal
 * and open per packet (ChaCha20-Poly1305 from libsodium through
 * PacketProtector) at 64 and 1200 bytes, next to the node:crypto
 * AES-256-GCM it replaced (protocol version 3: a cipher object per packet,
 * `createCipheriv` + `setAAD` + `update` + `final` + `getAuthTag`), and the
 * handshake's HMAC/HKDF operations.
 *
 *   npm run build && node dist/bench/crypto.js [--time MS (100)] [--rounds N (21)] [--idle-samples N (1000)] [--json FILE]
 *
 * Each case runs `rounds` slices of `time` ms, the two AEADs interleaved
 * slice by slice, and reports the median operations per second of this
 * process's CPU time (robust to other load on a shared VM) and of wall time,
 * then the median of the per-slice speed ratios of the two. Every case
 * checks its results: sealed lengths, opened plaintexts, verify outcomes.
 * PacketProtector seals and opens into preallocated buffers (no allocation
 * per packet); the node:crypto reference allocates what node:crypto must.
 *
 * Then the **idle** section: the wall time of one seal + open, per AEAD and
 * size, (a) right after two more of the same (no idle before it) and (b) right after a 1 ms idle
 * (`setTimeout`), as a request–response exchange meets it; all interleaved,
 * `--idle-samples` each; medians in µs.
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { PacketProtector, TAG_LENGTH } from '../lib/security/aead.js'
import { CookieJar } from '../lib/security/cookie.js'
import { createNonce, deriveSessionKeys, proveInitiator, verifyInitiator, type InitiatorTranscript } from '../lib/security/handshake.js'
import { keyId } from '../lib/security/keys.js'
import { ReplayWindow } from '../lib/security/replay.js'

/** The AEAD warpmesh uses. */
const SODIUM = 'chacha20-poly1305 (libsodium)'
/** The reference it replaced. */
const GCM = 'aes-256-gcm (node:crypto)'

interface Options {
  timeMs: number
  rounds: number
  idleSamples: number
  json: string | undefined
}

function parseArgs(argv: string[]): Options {
  const options: Options = { timeMs: 100, rounds: 21, idleSamples: 1000, json: undefined }
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1]
    switch (argv[i]) {
      case '--time': options.timeMs = Number(value); i++; break
      case '--rounds': options.rounds = Number(value); i++; break
      case '--json': options.json = value; i++; break
      case '--idle-samples': options.idleSamples = Number(value); i++; break
      default: throw new TypeError(`unknown argument ${argv[i]}; expected --time MS, --rounds N, --idle-samples N, --json FILE`)
    }
  }
  if (!(options.timeMs > 0) || !(options.rounds >= 1)) throw new RangeError('--time and --rounds must be positive')
  if (!Number.isInteger(options.idleSamples) || options.idleSamples < 1) throw new RangeError('--idle-samples must be a positive integer')
  return options
}

/** Operations per second in one slice, by wall-clock time and by this process's CPU time. */
interface Sample {
  wall: number
  cpu: number
}

/** One benchmark case: `run(n)` performs n operations and throws if a result is wrong. */
interface Case {
  name: string
  algorithm: string
  size: number
  run: (n: number) => void
  /** Checks after all rounds (e.g. full plaintext comparison). */
  finish?: () => void
  samples: Sample[]
}

interface Result {
  name: string
  algorithm: string
  size: number
  /** Median operations per CPU second (what the operation costs, robust to other load). */
  opsPerCpuSec: number
  /** 1e9 / opsPerCpuSec. */
  cpuNsPerOp: number
  /** Median operations per wall-clock second. */
  opsPerSec: number
  samples: Sample[]
}

const BATCH = 256
const HEADER = randomBytes(19) // magic, version, type, connection id, packet number: ~19 bytes

function fail(message: string): never {
  throw new Error(`benchmark check failed: ${message}`)
}

/** Run `c` for about `timeMs` of wall time; returns operations per wall second and per CPU second. */
function measure(c: Case, timeMs: number): Sample {
  let ops = 0
  const cpu = process.cpuUsage()
  const start = performance.now()
  let elapsed = 0
  while (elapsed < timeMs) {
    c.run(BATCH)
    ops += BATCH
    elapsed = performance.now() - start
  }
  const used = process.cpuUsage(cpu)
  const cpuMs = (used.user + used.system) / 1000
  return { wall: (ops / elapsed) * 1000, cpu: (ops / Math.max(cpuMs, 0.001)) * 1000 }
}

/** One AEAD as the benchmark drives it: seal into / open from fresh state per packet number. */
interface Aead {
  readonly name: string
  seal(pn: number, plaintext: Buffer): Uint8Array
  /** Plaintext or null. */
  open(pn: number, sealed: Uint8Array): Uint8Array | null
}

/** warpmesh's PacketProtector, sealing and opening into preallocated buffers. */
function sodiumAead(size: number): Aead {
  const k1 = randomBytes(32)
  const k2 = randomBytes(32)
  let sealer = new PacketProtector(k1, k2)
  const opener = new PacketProtector(k2, k1)
  const sealed = Buffer.alloc(size + TAG_LENGTH)
  const opened = Buffer.alloc(size)
  return {
    name: SODIUM,
    seal(pn, plaintext) {
      if (sealer.keyUsage > 0.5) sealer = new PacketProtector(k1, k2) // never reuse a nonce (the opener keeps no state)
      return sealer.seal(HEADER, pn, plaintext, sealed)
    },
    open: (pn, c) => opener.open(HEADER, pn, c, opened),
  }
}

/** The per-packet node:crypto AES-256-GCM of protocol version 3 (same nonce and AAD construction). */
function gcmAead(): Aead {
  const key: KeyObject = createSecretKey(randomBytes(32))
  const nonce = randomBytes(12)
  const options = { authTagLength: TAG_LENGTH } as const
  const setNonce = (pn: number): Buffer => { nonce.writeUInt32BE(pn >>> 0, 8); return nonce }
  return {
    name: GCM,
    seal(pn, plaintext) {
      const c = createCipheriv('aes-256-gcm', key, setNonce(pn), options)
      c.setAAD(HEADER)
      const ciphertext = c.update(plaintext)
      c.final()
      return Buffer.concat([ciphertext, c.getAuthTag()])
    },
    open(pn, sealed) {
      const end = sealed.length - TAG_LENGTH
      try {
        const d = createDecipheriv('aes-256-gcm', key, setNonce(pn), options)
        d.setAAD(HEADER)
        d.setAuthTag(sealed.subarray(end))
        const plaintext = d.update(sealed.subarray(0, end))
        d.final()
        return plaintext
      } catch {
        return null
      }
    },
  }
}

function aeadCases(make: () => Aead, size: number): Case[] {
  const payload = randomBytes(size)

  const sealer = make()
  let sealPn = 0
  const seal: Case = {
    name: 'seal', algorithm: sealer.name, size, samples: [],
    run(n) {
      let last: Uint8Array | undefined
      for (let i = 0; i < n; i++) last = sealer.seal(sealPn++ >>> 0, payload)
      if (last?.length !== size + TAG_LENGTH) fail(`seal length ${last?.length}`)
    },
  }

  // open only, over a ring of pre-sealed packets (copied: an AEAD may open into its own buffer)
  const ringAead = make()
  const ring: Buffer[] = []
  for (let pn = 0; pn < 1024; pn++) ring.push(Buffer.from(ringAead.seal(pn, payload)))
  let openIndex = 0
  const open: Case = {
    name: 'open', algorithm: ringAead.name, size, samples: [],
    run(n) {
      for (let i = 0; i < n; i++) {
        const pt = ringAead.open(openIndex, ring[openIndex])
        if (pt === null || pt.length !== size) fail(`open of packet ${openIndex}`)
        openIndex = (openIndex + 1) & 1023
      }
    },
    finish() {
      const pt = ringAead.open(7, ring[7])
      if (pt === null || !Buffer.from(pt).equals(payload)) fail('opened plaintext differs')
    },
  }

  // the receive path per packet: sender seals, receiver checks replay, opens, commits
  const pair = make()
  let window = new ReplayWindow()
  let pn = 0
  const both: Case = {
    name: 'seal+open', algorithm: pair.name, size, samples: [],
    run(n) {
      for (let i = 0; i < n; i++) {
        const sealed = pair.seal(pn, payload)
        if (!window.check(pn)) fail(`replay window refused fresh ${pn}`)
        const pt = pair.open(pn, sealed)
        if (pt === null || pt.length !== size || pt[0] !== payload[0]) fail(`round trip of ${pn}`)
        window.commit(pn)
        pn = (pn + 1) >>> 0
        if (pn === 0) window = new ReplayWindow()
      }
    },
  }
  return [seal, open, both]
}

function handshakeCases(): Case[] {
  let t = 0
  const jar = new CookieJar({ now: () => t })
  const nonce = createNonce()
  const cookie = jar.issue('198.18.0.1', 7400, 0x12345678, nonce)
  const key = randomBytes(32)
  const keys = [key]
  const id = keyId(key)
  const transcript: InitiatorTranscript = {
    initiatorNonce: nonce, initiatorConnId: 0x12345678, initiatorEpoch: 1, responderEpoch: 2, cookie, initiatorMaxDatagram: 1200,
  }
  const proof = proveInitiator(key, transcript)
  const nonceR = createNonce()
  const window = new ReplayWindow()
  let replayPn = 0
  return [
    {
      name: 'cookie issue', algorithm: 'hmac-sha256', size: 0, samples: [],
      run(n) {
        let c: Buffer | undefined
        for (let i = 0; i < n; i++) c = jar.issue('198.18.0.1', 7400, i, nonce)
        if (c?.length !== 20) fail('cookie length')
      },
    },
    {
      name: 'cookie verify', algorithm: 'hmac-sha256', size: 0, samples: [],
      run(n) {
        for (let i = 0; i < n; i++) if (!jar.verify(cookie, '198.18.0.1', 7400, 0x12345678, nonce)) fail('cookie verify')
      },
    },
    {
      name: 'proof verify', algorithm: 'hmac-sha256', size: 0, samples: [],
      run(n) {
        for (let i = 0; i < n; i++) if (verifyInitiator(keys, id, transcript, proof) !== key) fail('proof verify')
      },
    },
    {
      name: 'session keys', algorithm: 'hkdf-sha256', size: 0, samples: [],
      run(n) {
        for (let i = 0; i < n; i++) {
          if (deriveSessionKeys(key, nonce, nonceR, 1, 2).initiatorToResponder.length !== 32) fail('hkdf length')
        }
      },
    },
    {
      name: 'replay check+commit', algorithm: '-', size: 0, samples: [],
      run(n) {
        for (let i = 0; i < n; i++) {
          if (!window.check(replayPn) || !window.commit(replayPn)) fail(`replay ${replayPn}`)
          replayPn = (replayPn + 1) >>> 0
        }
      },
    },
  ]
}

function median(values: number[]): number {
  const sorted = values.slice().sort((x, y) => x - y)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

function formatLine(r: Result): string {
  const cpu = r.samples.map((x) => x.cpu)
  const n = (x: number): string => Math.round(x).toLocaleString('en-US')
  return `${r.name.padEnd(24)} ${r.algorithm.padEnd(18)} ${(r.size > 0 ? `${r.size} B` : '').padStart(6)} ` +
    `${n(r.opsPerCpuSec).padStart(11)} ops/cpu-s ${r.cpuNsPerOp.toFixed(0).padStart(6)} ns/op ` +
    `${n(r.opsPerSec).padStart(11)} ops/s wall  (cpu ${n(Math.min(...cpu))}..${n(Math.max(...cpu))})`
}

/** Median wall µs of one seal + open of one AEAD at one size. */
interface IdleResult {
  algorithm: string
  size: number
  /** Back to back. */
  hotUs: number
  /** Right after a 1 ms idle. */
  idleUs: number
  samples: number
}

/** Seal + open, hot and right after a 1 ms idle, for every AEAD and size; all interleaved. */
async function idleCosts(samples: number): Promise<IdleResult[]> {
  const subjects = [64, 1200].flatMap((size) => [sodiumAead(size), gcmAead()].map((aead) => ({
    aead, size, plaintext: randomBytes(size), pn: 0, hot: [] as number[], idle: [] as number[],
  })))
  type Subject = (typeof subjects)[number]
  const once = (s: Subject): number => {
    const t0 = process.hrtime.bigint()
    const opened = s.aead.open(s.pn, s.aead.seal(s.pn, s.plaintext))
    const t1 = process.hrtime.bigint()
    s.pn++
    if (opened === null || !Buffer.from(opened).equals(s.plaintext)) fail('idle: open failed')
    return Number(t1 - t0) / 1000
  }
  for (const s of subjects) for (let i = 0; i < 2000; i++) once(s) // JIT and first-use warm-up
  for (let i = 0; i < samples; i++) {
    for (const s of subjects) {
      once(s) // the one before it: "no idle" means right after the same operation, not after another subject's
      once(s)
      s.hot.push(once(s))
      await sleep(1)
      s.idle.push(once(s))
    }
  }
  return subjects.map((s) => ({ algorithm: s.aead.name, size: s.size, hotUs: median(s.hot), idleUs: median(s.idle), samples }))
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2))
  const groups: Case[][] = []
  for (const size of [64, 1200]) {
    const perAead = [aeadCases(() => sodiumAead(size), size), aeadCases(gcmAead, size)]
    for (let i = 0; i < perAead[0].length; i++) groups.push(perAead.map((cases) => cases[i]))
  }
  for (const c of handshakeCases()) groups.push([c])

  console.log(`node ${process.version}, ${options.rounds} rounds × ${options.timeMs} ms per case, interleaved; ` +
    'median ops per CPU second (ns/op of CPU), median wall ops/s, (min..max cpu)')
  const results: Result[] = []
  const ratios: string[] = []
  for (const group of groups) {
    for (const c of group) measure(c, Math.min(50, options.timeMs)) // warm-up
    for (let round = 0; round < options.rounds; round++) {
      // alternate which case goes first, so drift within a round favours none
      const order = round % 2 === 0 ? group : group.slice().reverse()
      for (const c of order) c.samples.push(measure(c, options.timeMs))
    }
    for (const c of group) {
      c.finish?.()
      const opsPerCpuSec = median(c.samples.map((x) => x.cpu))
      const r: Result = {
        name: c.name, algorithm: c.algorithm, size: c.size, opsPerCpuSec, cpuNsPerOp: 1e9 / opsPerCpuSec,
        opsPerSec: median(c.samples.map((x) => x.wall)), samples: c.samples,
      }
      results.push(r)
      console.log(formatLine(r))
    }
    if (group.length === 2) {
      // paired per-round ratio of CPU cost: robust to load that changes between rounds
      const per = group[0].samples.map((x, i) => x.cpu / group[1].samples[i].cpu)
      const ratio = median(per)
      const label = `${group[0].name}${group[0].size > 0 ? ` ${group[0].size} B` : ''}`
      ratios.push(`${label.padEnd(32)} ${group[0].algorithm} / ${group[1].algorithm} speed = ${ratio.toFixed(3)} ` +
        `(rounds ${Math.min(...per).toFixed(2)}..${Math.max(...per).toFixed(2)})`)
    }
  }
  console.log('')
  for (const line of ratios) console.log(line)
  const idle = await idleCosts(options.idleSamples)
  console.log('')
  console.log(`seal + open, median wall µs over ${options.idleSamples} interleaved samples each:`)
  for (const r of idle) {
    console.log(`  ${r.algorithm.padEnd(30)} ${`${r.size} B`.padStart(6)}   no idle before it ${r.hotUs.toFixed(2).padStart(6)}   after a 1 ms idle ${r.idleUs.toFixed(2).padStart(6)}`)
  }
  if (options.json !== undefined) {
    writeFileSync(options.json, JSON.stringify({ node: process.version, timeMs: options.timeMs, rounds: options.rounds, results, idle }, null, 2))
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})

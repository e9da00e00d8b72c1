/**
 * Cost of warpmesh's security primitives on this machine: AEAD seal/open per
 * packet for AES-256-GCM and ChaCha20-Poly1305 at 64 and 1200 bytes, the
 * fixed per-packet cost of `createCipheriv`, and the handshake's HMAC/HKDF
 * operations. Used to choose `DEFAULT_AEAD`.
 *
 *   npm run build && node dist/bench/crypto.js [--time MS (100)] [--rounds N (21)] [--json FILE]
 *
 * Each case runs `rounds` slices of `time` ms, the two algorithms interleaved
 * slice by slice, and reports the median operations per second of this
 * process's CPU time (robust to other load on a shared VM) and of wall time,
 * then the median of the per-slice speed ratios of the two algorithms. Every
 * case checks its results: sealed lengths, opened plaintexts, verify outcomes.
 *
 * Then the **idle** section: the wall time of one seal + open of a 64-B
 * payload with the default AEAD (a) with no idle before it, (b) right after a 1 ms
 * idle (`setTimeout`), as a request–response exchange meets it, and (c)
 * after the idle with the cipher and decipher made before it
 * (`PacketProtector.prepare`, what the endpoint does after each flush).
 * The three are interleaved, `--idle-samples` each (1000); medians in µs.
 */
import { createCipheriv, createSecretKey, randomBytes, type CipherGCMTypes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { AEAD_ALGORITHMS, type AeadAlgorithm, DEFAULT_AEAD, PacketProtector, TAG_LENGTH } from '../lib/security/aead.js'
import { CookieJar } from '../lib/security/cookie.js'
import { createNonce, deriveSessionKeys, proveInitiator, verifyInitiator, type InitiatorTranscript } from '../lib/security/handshake.js'
import { keyId } from '../lib/security/keys.js'
import { ReplayWindow } from '../lib/security/replay.js'

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

function aeadCases(algorithm: AeadAlgorithm, size: number): Case[] {
  let sendKey = randomBytes(32)
  let recvKey = randomBytes(32)
  const payload = randomBytes(size)

  // seal only; fresh keys before the key's limits come near (never reuse a nonce)
  let sealer = new PacketProtector(sendKey, recvKey, algorithm)
  let sealPn = 0
  let lastSealed: Buffer = Buffer.alloc(0)
  const seal: Case = {
    name: 'seal', algorithm, size, samples: [],
    run(n) {
      if (sealer.keyUsage > 0.5) {
        sendKey = randomBytes(32)
        recvKey = randomBytes(32)
        sealer = new PacketProtector(sendKey, recvKey, algorithm)
      }
      for (let i = 0; i < n; i++) {
        lastSealed = sealer.seal(HEADER, sealPn, payload)
        sealPn = (sealPn + 1) >>> 0
      }
      if (lastSealed.length !== size + TAG_LENGTH) fail(`seal length ${lastSealed.length}`)
    },
    finish() {
      const opened = new PacketProtector(recvKey, sendKey, algorithm).open(HEADER, (sealPn - 1) >>> 0, lastSealed)
      if (opened === null || !opened.equals(payload)) fail('last sealed packet does not open')
    },
  }

  // open only, over a ring of pre-sealed packets
  const ringSealer = new PacketProtector(sendKey, recvKey, algorithm)
  const ring: Buffer[] = []
  for (let pn = 0; pn < 1024; pn++) ring.push(ringSealer.seal(HEADER, pn, payload))
  const opener = new PacketProtector(recvKey, sendKey, algorithm)
  let openIndex = 0
  const open: Case = {
    name: 'open', algorithm, size, samples: [],
    run(n) {
      for (let i = 0; i < n; i++) {
        const pt = opener.open(HEADER, openIndex, ring[openIndex])
        if (pt === null || pt.length !== size) fail(`open of packet ${openIndex}`)
        openIndex = (openIndex + 1) & 1023
      }
    },
    finish() {
      const pt = opener.open(HEADER, 7, ring[7])
      if (pt === null || !pt.equals(payload)) fail('opened plaintext differs')
    },
  }

  // the receive path per packet: sender seals, receiver checks replay, opens, commits
  let a = new PacketProtector(sendKey, recvKey, algorithm)
  let b = new PacketProtector(recvKey, sendKey, algorithm)
  let window = new ReplayWindow()
  let pn = 0
  let delivered = 0
  let failures = 0
  const both: Case = {
    name: 'seal+open', algorithm, size, samples: [],
    run(n) {
      if (a.keyUsage > 0.5) {
        failures += b.openFailures
        const k1 = randomBytes(32)
        const k2 = randomBytes(32)
        a = new PacketProtector(k1, k2, algorithm)
        b = new PacketProtector(k2, k1, algorithm)
        window = new ReplayWindow()
      }
      for (let i = 0; i < n; i++) {
        const sealed = a.seal(HEADER, pn, payload)
        if (!window.check(pn)) fail(`replay window refused fresh ${pn}`)
        const pt = b.open(HEADER, pn, sealed)
        if (pt === null || pt.length !== size || pt[0] !== payload[0]) fail(`round trip of ${pn}`)
        window.commit(pn)
        pn = (pn + 1) >>> 0
        delivered++
      }
    },
    finish() {
      if (delivered !== pn) fail(`delivered ${delivered} of ${pn}`)
      if (failures + b.openFailures !== 0) fail(`${failures + b.openFailures} open failures`)
    },
  }
  return [seal, open, both]
}

/** The fixed cost createCipheriv imposes on every packet, with a KeyObject and with raw key bytes. */
function cipherInitCases(algorithm: AeadAlgorithm): Case[] {
  const raw = randomBytes(32)
  const keyObject = createSecretKey(raw)
  const nonce = randomBytes(12)
  const options = { authTagLength: TAG_LENGTH }
  const make = (name: string, key: Buffer | ReturnType<typeof createSecretKey>): Case => ({
    name, algorithm, size: 0, samples: [],
    run(n) {
      let tag: Buffer | undefined
      for (let i = 0; i < n; i++) {
        const cipher = createCipheriv(algorithm as CipherGCMTypes, key, nonce, options)
        cipher.setAAD(HEADER)
        cipher.final()
        tag = cipher.getAuthTag()
      }
      if (tag?.length !== TAG_LENGTH) fail('tag length')
    },
  })
  return [make('cipher-init (KeyObject)', keyObject), make('cipher-init (raw key)', raw)]
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

interface IdleResult {
  /** Median wall µs of seal + open, back to back. */
  hotUs: number
  /** Median wall µs of seal + open right after a 1 ms idle. */
  idleUs: number
  /** The same with the cipher and decipher prepared before the idle. */
  idlePreparedUs: number
  samples: number
}

/** Seal + open of 64 B: hot, after a 1 ms idle, and after the idle with prepared ciphers; interleaved. */
async function idleCosts(samples: number): Promise<IdleResult> {
  const key1 = randomBytes(32)
  const key2 = randomBytes(32)
  const header = randomBytes(19)
  const plaintext = randomBytes(64)
  const a = new PacketProtector(key1, key2, DEFAULT_AEAD)
  const b = new PacketProtector(key2, key1, DEFAULT_AEAD)
  let pn = 0
  const once = (): number => {
    const t0 = process.hrtime.bigint()
    const sealed = a.seal(header, pn, plaintext)
    const opened = b.open(header, pn, sealed)
    const t1 = process.hrtime.bigint()
    pn++
    if (opened === null || !opened.equals(plaintext)) fail('idle: open failed')
    return Number(t1 - t0) / 1000
  }
  for (let i = 0; i < 2000; i++) once() // JIT and first-use warm-up
  const hot: number[] = []
  const idle: number[] = []
  const prepared: number[] = []
  for (let i = 0; i < samples; i++) {
    hot.push(once())
    await sleep(1)
    idle.push(once())
    a.prepare()
    b.prepare()
    await sleep(1)
    prepared.push(once())
  }
  if (a.preparedHits < samples || b.preparedHits < samples) fail('idle: prepared ciphers were not used')
  return { hotUs: median(hot), idleUs: median(idle), idlePreparedUs: median(prepared), samples }
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2))
  const groups: Case[][] = []
  for (const size of [64, 1200]) {
    const perAlgorithm = AEAD_ALGORITHMS.map((algorithm) => aeadCases(algorithm, size))
    for (let i = 0; i < perAlgorithm[0].length; i++) groups.push(perAlgorithm.map((cases) => cases[i]))
  }
  const inits = AEAD_ALGORITHMS.map(cipherInitCases)
  for (let i = 0; i < inits[0].length; i++) groups.push(inits.map((cases) => cases[i]))
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
  console.log(`seal + open, 64 B, ${DEFAULT_AEAD}, median wall µs over ${idle.samples} interleaved samples each:`)
  console.log(`  no idle before it ${idle.hotUs.toFixed(2)}   after a 1 ms idle ${idle.idleUs.toFixed(2)}   after a 1 ms idle, cipher + decipher prepared before it ${idle.idlePreparedUs.toFixed(2)}`)
  if (options.json !== undefined) {
    writeFileSync(options.json, JSON.stringify({ node: process.version, timeMs: options.timeMs, rounds: options.rounds, results, idle }, null, 2))
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})

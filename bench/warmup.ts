/**
 * What the start-up warm-up ({@link warmUp}, `MeshNode.start({ warmup })`,
 * `WARPMESH_WARMUP`) buys a freshly started node: two new processes, an echo
 * endpoint and a client (protected, 127.0.0.1), and the client's first
 * `--requests` 64-B requests, one every `--gap` ms, as a node exchanging a
 * few messages a second sends them. Measured: the p50 round trip and the
 * echo process's CPU per request (user + system, `process.cpuUsage()`),
 * with no warm-up and with `--round-trips` warm-up round trips in each
 * process before its endpoint starts. The two modes alternate over
 * `--runs` runs; the figures are medians over the runs.
 *
 *   npm run build && node dist/bench/warmup.js [--runs N (5)] [--requests N (300)] [--gap MS (5)] [--round-trips N (3000)]
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Endpoint, type Session } from '../lib/endpoint.js'
import { bindUdp } from '../lib/transport/udp.js'
import { warmUp } from '../lib/warmup.js'
import { Delivery } from '../lib/wire/codec.js'
import { median } from './harness/stats.js'

const ORDERED = { channel: 0, delivery: Delivery.RELIABLE_ORDERED } as const
const KEY = Buffer.alloc(32, 0x42)

interface Settings { runs: number, requests: number, gapMs: number, roundTrips: number }

function parseArgs (argv: readonly string[]): Settings {
  const s: Settings = { runs: 5, requests: 300, gapMs: 5, roundTrips: 3000 }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!
    const n = Number(argv[++i])
    const key = ({ '--runs': 'runs', '--requests': 'requests', '--gap': 'gapMs', '--round-trips': 'roundTrips' } as const)[flag as '--runs']
    if (key === undefined || !Number.isInteger(n) || n < 1) {
      process.stderr.write(`usage: node dist/bench/warmup.js [--runs N] [--requests N] [--gap MS] [--round-trips N] (positive integers; got ${flag} ${argv[i]})\n`)
      process.exit(2)
    }
    s[key] = n
  }
  return s
}

/** Child process: `echo WARMUP` or `client WARMUP PORT REQUESTS GAP`; talks to the parent over IPC. */
async function child (role: string, args: readonly string[]): Promise<void> {
  const warm = Number(args[0])
  if (warm > 0) await warmUp({ roundTrips: warm })
  const endpoint = new Endpoint(await bindUdp({ address: '127.0.0.1' }), { keys: [KEY] })
  if (role === 'echo') {
    let start = process.cpuUsage()
    endpoint.on('message', (data: Uint8Array, s: Session) => { s.send(data, ORDERED) })
    process.on('message', (m: string) => {
      if (m === 'start') { start = process.cpuUsage(); return }
      const used = process.cpuUsage(start)
      process.send!({ cpuUs: used.user + used.system }, () => { void endpoint.close().then(() => process.exit(0)) })
    })
    process.send!({ port: endpoint.port })
    return
  }
  const [port, requests, gap] = args.slice(1).map(Number) as [number, number, number]
  const session = await endpoint.connect('127.0.0.1', port)
  const payload = Buffer.alloc(64, 7)
  const rtts: number[] = []
  let resolveOne = (): void => {}
  endpoint.on('message', () => resolveOne())
  process.send!('start')
  for (let i = 0; i < requests; i++) {
    await new Promise((resolve) => setTimeout(resolve, gap))
    const t0 = process.hrtime.bigint()
    await new Promise<void>((resolve) => { resolveOne = resolve; session.send(payload, ORDERED) })
    rtts.push(Number(process.hrtime.bigint() - t0) / 1000)
  }
  process.send!({ p50: median(rtts) }, () => { void endpoint.close().then(() => process.exit(0)) })
}

function message<T> (p: ReturnType<typeof fork>, pick: (m: unknown) => T | undefined): Promise<T> {
  return new Promise((resolve, reject) => {
    const on = (m: unknown): void => { const v = pick(m); if (v !== undefined) { p.off('message', on); resolve(v) } }
    p.on('message', on)
    p.once('exit', (code) => reject(new Error(`child exited (${code}) before answering`)))
  })
}

async function run (s: Settings, warm: number): Promise<{ p50: number, cpuUs: number }> {
  const self = fileURLToPath(import.meta.url)
  const echo = fork(self, ['echo', String(warm)])
  let client: ReturnType<typeof fork> | undefined
  try {
    const port = await message(echo, (m) => (m as { port?: number }).port)
    client = fork(self, ['client', String(warm), String(port), String(s.requests), String(s.gapMs)])
    await message(client, (m) => (m === 'start' ? true : undefined))
    echo.send('start')
    const { p50 } = await message(client, (m) => (typeof (m as { p50?: number }).p50 === 'number' ? m as { p50: number } : undefined))
    echo.send('stop')
    const { cpuUs } = await message(echo, (m) => (typeof (m as { cpuUs?: number }).cpuUs === 'number' ? m as { cpuUs: number } : undefined))
    return { p50, cpuUs: cpuUs / s.requests }
  } finally {
    for (const p of [echo, client]) if (p !== undefined && p.exitCode === null) p.kill()
  }
}

async function main (): Promise<void> {
  const s = parseArgs(process.argv.slice(2))
  const modes = [0, s.roundTrips]
  const results = new Map<number, Array<{ p50: number, cpuUs: number }>>(modes.map((m) => [m, []]))
  for (let r = 0; r < s.runs; r++) {
    for (const warm of r % 2 === 0 ? modes : [...modes].reverse()) {
      const x = await run(s, warm)
      results.get(warm)!.push(x)
      process.stdout.write(`run ${r + 1}/${s.runs} ${warm === 0 ? 'no warm-up' : `warm-up ${warm}`}: p50 ${x.p50.toFixed(0)} µs, echo CPU ${x.cpuUs.toFixed(0)} µs per request\n`)
    }
  }
  process.stdout.write(`\nfirst ${s.requests} requests of a fresh pair, one every ${s.gapMs} ms (64 B, protected), medians of ${s.runs} runs:\n`)
  for (const warm of modes) {
    const xs = results.get(warm)!
    process.stdout.write(`  ${(warm === 0 ? 'no warm-up' : `warm-up ${warm} round trips`).padEnd(28)} p50 round trip ${median(xs.map((x) => x.p50)).toFixed(0).padStart(5)} µs   echo CPU per request ${median(xs.map((x) => x.cpuUs)).toFixed(0).padStart(5)} µs\n`)
  }
}

const [role, ...rest] = process.argv.slice(2)
if (role === 'echo' || role === 'client') await child(role, rest)
else await main()

/**
 * Agent benchmark (`npm run bench:agent`).
 *
 * Round trip (64 B request/response, sequential) between two clients through
 * two agents, each agent a separate `warpmesh agent` process and each client
 * a separate process speaking the bench-client contract (Node; Java and PHP
 * when their programs are built), against:
 * - direct MeshNode ↔ MeshNode (the harness's `warpmesh` variant, d1 ↔ d2),
 * - the TCP star (the harness's `tcp-star` variant, d1 ↔ d2 through the proxy),
 * - a raw Unix-socket round trip between two processes (the floor of one local hop),
 * - raw node:dgram d1 ↔ d2, and round trips through raw relays (bench/lib/raw-relay.ts):
 *   the agent's processes and hops with no work in them. Their difference is the
 *   floor of what the agent's topology adds on this machine, printed beside the goal.
 *   Beside each, the CPU per round trip (from /proc, warm-up included) of the two
 *   relaying processes together and of the echoing client: what the agents' own
 *   work costs over the relays'.
 * Before any client is measured, the agents carry unmeasured Node round trips
 * (V8 optimizes their code late; the first language measured must not pay for it).
 * One-way 64-B messages through an agent (flood mode, after a counted warm-up
 * flood in the same client process), and the agent's RSS
 * over a run of `--duration` seconds (default 60) under request load.
 *
 * Every figure is the median of `--repetitions` (default 3) runs. Every
 * client checks what it received (pingpong: byte-equal replies; flood: the
 * receiver's count). Goals are printed as ratios.
 *
 * Options: `--quick` (small counts, one repetition, 3 s memory run),
 * `--clients node,java,php`, `--count N`, `--flood N`, `--flood-warmup N`, `--duration S`,
 * `--repetitions R`, `--no-baselines`, `--md PATH`, `--json PATH`.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateKey } from '../lib/security/keys.js'
import { Cluster } from './harness/cluster.js'
import { cpuPerUnit, cpuSnapshot } from './harness/cpu.js'
import { addExitHook, removeExitHook, stopProcess, trackProcess } from './harness/processes.js'
import { combineRepetitions, pingPong, type PingPongResult } from './harness/scenarios.js'
import { formatLine, formatMicros, formatRate, median, medianSummary, summarize, type Summary } from './harness/stats.js'
import { findVariant } from './variants/index.js'

const here = dirname(fileURLToPath(import.meta.url))
/** The repository root (this file runs from dist/bench). */
const ROOT = resolve(here, '..', '..')
const CLI = join(ROOT, 'dist', 'lib', 'cli.js')
const NODE_CLIENT = join(ROOT, 'dist', 'bench', 'agent-client.js')
const UNIX_ECHO = join(ROOT, 'dist', 'bench', 'lib', 'unix-echo.js')
const RAW_RELAY = join(ROOT, 'dist', 'bench', 'lib', 'raw-relay.js')
const JAVA_JAR = join(ROOT, 'clients', 'java', 'build', 'warpmesh-client.jar')
const PHP_CLIENT = join(ROOT, 'clients', 'php', 'tools', 'bench-client.php')

// ---------------------------------------------------------------- options

/** WARPMESH_AGENT_CLIENT_BUFFER of the bench's agents (see startMesh). */
const BENCH_CLIENT_BUFFER = '64MiB'

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : undefined
}
const quick = process.argv.includes('--quick')
const numberArg = (name: string, fallback: number): number => {
  const text = arg(name)
  if (text === undefined) return fallback
  const n = Number(text)
  if (!(n > 0)) throw new RangeError(`--${name} must be a positive number, got ${JSON.stringify(text)}`)
  return n
}
const settings = {
  count: numberArg('count', quick ? 300 : 5000),
  warmup: quick ? 50 : 1000,
  /** Round trips through the agents before any client is measured. */
  agentWarmup: quick ? 200 : 10_000,
  flood: numberArg('flood', quick ? 5000 : 200_000),
  /** One-way messages sent and counted before the timed flood, in the same client process (JIT warm-up). */
  floodWarmup: numberArg('flood-warmup', quick ? 500 : 100_000),
  durationS: numberArg('duration', quick ? 3 : 60),
  repetitions: numberArg('repetitions', quick ? 1 : 3),
  size: 64,
  baselines: !process.argv.includes('--no-baselines'),
  clients: (arg('clients') ?? 'node,java,php').split(',').filter((c) => c !== ''),
}
const mdPath = arg('md') ?? join(ROOT, 'bench', 'AGENT.md')
const jsonPath = arg('json') ?? join(ROOT, 'bench', 'agent-results.json')

// ---------------------------------------------------------------- clients

interface ClientKind {
  readonly name: string
  /** Command and leading arguments; null with the reason when not built. */
  readonly command: readonly string[] | null
  readonly missing?: string
}

function clientKinds(): ClientKind[] {
  const kinds: ClientKind[] = []
  for (const name of settings.clients) {
    if (name === 'node') kinds.push({ name, command: [process.execPath, NODE_CLIENT] })
    else if (name === 'java') {
      kinds.push(existsSync(JAVA_JAR)
        ? { name, command: ['java', '-cp', `${JAVA_JAR}:/usr/share/java/protobuf.jar`, 'dev.warpmesh.agent.tools.BenchClient'] }
        : { name, command: null, missing: `not built (${JAVA_JAR} missing)` })
    } else if (name === 'php') {
      kinds.push(existsSync(PHP_CLIENT)
        ? { name, command: ['php', PHP_CLIENT] }
        : { name, command: null, missing: `not built (${PHP_CLIENT} missing)` })
    } else throw new RangeError(`unknown client ${JSON.stringify(name)}; expected node, java or php`)
  }
  return kinds
}

// ---------------------------------------------------------------- processes

interface Proc {
  readonly child: ChildProcess
  readonly pid: number
  stdout: string
  stderr: string
}

function start(command: readonly string[], env: Record<string, string> = {}): Proc {
  const child = spawn(command[0]!, command.slice(1), { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  const p: Proc = { child, pid: trackProcess(child), stdout: '', stderr: '' }
  child.stdout!.setEncoding('utf8').on('data', (s: string) => { p.stdout += s })
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { p.stderr += s })
  return p
}

async function waitFor(pred: () => boolean, what: string, p: Proc | null, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!pred()) {
    if (p !== null && p.child.exitCode !== null) throw new Error(`${what}: the process exited (${p.child.exitCode}): ${p.stderr.slice(-2000)}`)
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${p === null ? '' : `: ${p.stderr.slice(-2000)}`}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

function exited(p: Proc, timeoutMs: number): Promise<number> {
  if (p.child.exitCode !== null) return Promise.resolve(p.child.exitCode)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`process ${p.pid} still running after ${timeoutMs} ms: ${p.stderr.slice(-2000)}`)), timeoutMs)
    p.child.once('exit', (code) => { clearTimeout(timer); resolve(code ?? 1) })
  })
}

function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path)
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

/** RSS of a process in bytes, from /proc (NaN where unavailable). */
function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? NaN : Number(m[1]) * 1024
  } catch {
    return NaN
  }
}

// ---------------------------------------------------------------- measurements

/** Sequential round trips of `size`-B messages to whatever echoes on the Unix socket at `path`. */
async function unixRoundTrips(path: string, count: number, warmup: number): Promise<Summary> {
  const socket = connect(path)
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  try {
    const payload = Buffer.alloc(settings.size, 1)
    const rtt: number[] = []
    let got = 0
    let failure: Error | null = null
    let wake: (() => void) | null = null
    const wakeUp = (): void => { const w = wake; wake = null; w?.() }
    socket.on('data', (chunk: Buffer) => {
      got += chunk.length
      if (got >= payload.length) wakeUp()
    })
    socket.on('error', (err) => { failure = err; wakeUp() })
    socket.on('close', () => { failure ??= new Error(`the echo on ${path} closed the connection`); wakeUp() })
    // A watchdog, not a timer per round trip (the floor measures the hop, nothing else).
    let done = 0
    let seen = -1
    const watchdog = setInterval(() => {
      if (done === seen) socket.destroy(new Error(`no answer within 10 s on ${path}`))
      seen = done
    }, 10_000)
    try {
      for (let i = 0; i < warmup + count; i++, done++) {
        got = 0
        const t0 = process.hrtime.bigint()
        await new Promise<void>((resolve) => { wake = resolve; socket.write(payload) })
        const t1 = process.hrtime.bigint()
        if (failure !== null) throw failure
        if (got !== payload.length) throw new Error(`the echo on ${path} returned ${got} bytes, expected ${payload.length}`)
        if (i >= warmup) rtt.push(Number(t1 - t0) / 1000)
      }
    } finally {
      clearInterval(watchdog)
    }
    return summarize(rtt)
  } finally {
    socket.destroy()
  }
}

/** Round trips over a raw Unix socket to an echo process: the floor of one local hop. */
async function rawUnixRoundTrip(dir: string, count: number, warmup: number): Promise<Summary> {
  const path = join(dir, 'echo.sock')
  const echo = start([process.execPath, UNIX_ECHO, path])
  try {
    await waitFor(() => echo.stdout.includes('ready'), 'the Unix echo process', echo)
    return await unixRoundTrips(path, count, warmup)
  } finally {
    await stopProcess(echo.child)
  }
}

/**
 * Round trips through the agent's topology with no work in it (bench/lib/raw-relay.ts):
 * client → Unix → relay → UDP → relay → Unix → echo and back, each a process of its own.
 */
async function rawRelayRoundTrip(dir: string, count: number, warmup: number): Promise<PathRun> {
  const paths = [join(dir, 'relay1.sock'), join(dir, 'relay2.sock')]
  const procs: Proc[] = []
  try {
    const relays = paths.map((p) => start([process.execPath, RAW_RELAY, 'relay', p]))
    procs.push(...relays)
    const ports: number[] = []
    for (const r of relays) {
      await waitFor(() => /port \d+/.test(r.stdout), 'a raw relay', r)
      ports.push(Number(/port (\d+)/.exec(r.stdout)![1]))
    }
    relays[0]!.child.stdin!.write(`peer ${ports[1]}\n`)
    relays[1]!.child.stdin!.write(`peer ${ports[0]}\n`)
    for (const r of relays) await waitFor(() => r.stdout.includes('peered'), 'a raw relay', r)
    const echo = start([process.execPath, RAW_RELAY, 'echo', paths[1]!])
    procs.push(echo)
    await waitFor(() => echo.stdout.includes('ready'), 'the raw relay echo', echo)
    const measured = [{ name: 'relays', pid: relays[0]!.pid }, { name: 'relays2', pid: relays[1]!.pid }, { name: 'echo', pid: echo.pid }]
    const before = cpuSnapshot(measured)
    const rtt = await unixRoundTrips(paths[0]!, count, warmup)
    return { rtt, cpu: pathCpu(before, cpuSnapshot(measured), count + warmup) }
  } finally {
    await Promise.all(procs.map((p) => stopProcess(p.child)))
  }
}

/** CPU µs per round trip of the two relaying processes (agents, or raw relays) together, and of the echoing client. */
interface PathCpu {
  readonly relays: number
  readonly echo: number
}

/** Round trips through a relay path, and the CPU they cost. */
interface PathRun {
  readonly rtt: Summary
  readonly cpu: PathCpu
  /** Each repetition's p50 (µs), in order (after combinePathRuns). */
  readonly repP50s?: number[]
}

/** CPU per round trip from two snapshots of 'relays', 'relays2' and 'echo' (warm-up round trips included). */
function pathCpu(before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>, roundTrips: number): PathCpu {
  const by = cpuPerUnit(before, after, roundTrips).byProcess
  return { relays: (by.relays ?? NaN) + (by.relays2 ?? NaN), echo: by.echo ?? NaN }
}

/** Median round trips of the repetitions, and each CPU figure's median. */
function combinePathRuns(runs: readonly PathRun[]): PathRun {
  return {
    rtt: medianSummary(runs.map((r) => r.rtt)),
    cpu: { relays: median(runs.map((r) => r.cpu.relays)), echo: median(runs.map((r) => r.cpu.echo)) },
    repP50s: runs.map((r) => r.rtt.p50),
  }
}

const cpuText = (c: PathCpu, what: string): string => `CPU per round trip: ${what} ${c.relays.toFixed(0)} µs, echo ${c.echo.toFixed(0)} µs`

interface Mesh {
  readonly env: Record<string, string>
  readonly agents: { proc: Proc; socket: string }[]
  close(): Promise<void>
}

/** A coordinator and two agents, each its own `warpmesh` process, protected by a fresh key. */
async function startMesh(dir: string): Promise<Mesh> {
  const key = generateKey()
  const port = 17_000 + Math.floor(Math.random() * 20_000)
  // The flood's receiver must hold what the sender outpaces it by (no end-to-end
  // backpressure across the mesh): 64 MiB covers 200k 64-B messages whole.
  const base = {
    WARPMESH_KEY: key, WARPMESH_LOG: 'warn', WARPMESH_BIND: '127.0.0.1:0', WARPMESH_COORDINATORS: `127.0.0.1:${port}`,
    WARPMESH_AGENT_CLIENT_BUFFER: BENCH_CLIENT_BUFFER,
  }
  const procs: Proc[] = []
  const hook = addExitHook(() => { for (const p of procs) { try { process.kill(p.pid, 'SIGKILL') } catch { /* gone */ } } })
  const close = async (): Promise<void> => {
    await Promise.all(procs.map((p) => stopProcess(p.child, 'SIGTERM', 5000)))
    removeExitHook(hook)
  }
  try {
    const coordinator = start([process.execPath, CLI, 'coordinator'], { ...base, WARPMESH_BIND: `127.0.0.1:${port}`, WARPMESH_LOG: 'info' })
    procs.push(coordinator)
    await waitFor(() => coordinator.stderr.includes('"ready"'), 'the coordinator', coordinator)
    const agents: { proc: Proc; socket: string }[] = []
    for (const name of ['agent1', 'agent2']) {
      const socket = join(dir, `${name}.sock`)
      const proc = start([process.execPath, CLI, 'agent'], { ...base, WARPMESH_AGENT_SOCKET: socket })
      procs.push(proc)
      agents.push({ proc, socket })
    }
    for (const a of agents) {
      const end = Date.now() + 30_000
      while (!(existsSync(a.socket) && await canConnect(a.socket))) {
        if (a.proc.child.exitCode !== null || Date.now() > end) throw new Error(`agent did not start: ${a.proc.stderr.slice(-2000)}`)
        await new Promise((r) => setTimeout(r, 20))
      }
    }
    return { env: base, agents, close }
  } catch (err) {
    await close()
    throw err
  }
}

function clientArgs(kind: ClientKind, socket: string, args: readonly string[]): string[] {
  return [...(kind.command as string[]), '--socket', socket, ...args]
}

/** An echo client on agent 2; returns it once `ready`. */
async function startEcho(kind: ClientKind, mesh: Mesh, id: string): Promise<Proc> {
  const echo = start(clientArgs(kind, mesh.agents[1]!.socket, ['--id', id, '--mode', 'echo']))
  await waitFor(() => echo.stdout.includes('ready'), `${kind.name} echo client`, echo)
  return echo
}

async function stopEcho(echo: Proc): Promise<void> {
  echo.child.stdin!.end()
  await exited(echo, 10_000).catch(async () => stopProcess(echo.child))
}

/** One JSON result line of a pingpong/flood client run to completion. */
async function runClient(kind: ClientKind, mesh: Mesh, args: readonly string[], timeoutMs: number, onReady?: () => void): Promise<Record<string, unknown>> {
  const p = start(clientArgs(kind, mesh.agents[0]!.socket, args))
  if (onReady !== undefined) {
    // At the line itself, not on a poll: the client starts its round trips right after it.
    const seen = (): void => {
      if (!p.stdout.includes('ready')) return
      p.child.stdout!.off('data', seen)
      onReady()
    }
    p.child.stdout!.on('data', seen)
  }
  const code = await exited(p, timeoutMs)
  if (code !== 0) throw new Error(`${kind.name} client ${args.join(' ')} exited ${code}: ${p.stderr.slice(-2000)}`)
  const line = p.stdout.split('\n').find((l) => l.startsWith('{'))
  if (line === undefined) throw new Error(`${kind.name} client printed no result: ${p.stdout.slice(-500)}`)
  return JSON.parse(line) as Record<string, unknown>
}

let nextId = 0
const uid = (prefix: string): string => `${prefix}-${process.pid}-${++nextId}`

async function agentRoundTrip(kind: ClientKind, mesh: Mesh): Promise<PathRun> {
  const runs: PathRun[] = []
  for (let r = 0; r < settings.repetitions; r++) {
    const echoId = uid(`${kind.name}-echo`)
    const echo = await startEcho(kind, mesh, echoId)
    try {
      const measured = [{ name: 'relays', pid: mesh.agents[0]!.proc.pid }, { name: 'relays2', pid: mesh.agents[1]!.proc.pid }, { name: 'echo', pid: echo.pid }]
      // From the client's `ready` (its node has joined: the agent's start-up work is not counted).
      let before = new Map<string, number>()
      const res = await runClient(kind, mesh, [
        '--id', uid(`${kind.name}-ping`), '--mode', 'pingpong', '--peer', echoId, '--count', String(settings.count),
        '--size', String(settings.size), '--warmup', String(settings.warmup), '--timeout-ms', '20000',
      ], 300_000, () => { before = cpuSnapshot(measured) })
      const rtt = res.rtt_us as number[]
      if (!Array.isArray(rtt) || rtt.length !== settings.count) throw new Error(`${kind.name} pingpong returned ${String(rtt?.length)} samples, expected ${settings.count}`)
      runs.push({ rtt: summarize(rtt), cpu: pathCpu(before, cpuSnapshot(measured), settings.count + settings.warmup) })
    } finally {
      await stopEcho(echo)
    }
  }
  return combinePathRuns(runs)
}

async function agentFlood(kind: ClientKind, mesh: Mesh): Promise<number> {
  const rates: number[] = []
  for (let r = 0; r < settings.repetitions; r++) {
    const echoId = uid(`${kind.name}-sink`)
    const echo = await startEcho(kind, mesh, echoId)
    try {
      const res = await runClient(kind, mesh, [
        '--id', uid(`${kind.name}-flood`), '--mode', 'flood', '--peer', echoId, '--count', String(settings.flood),
        '--size', String(settings.size), '--warmup', String(settings.floodWarmup), '--timeout-ms', '120000',
      ], 300_000)
      if (res.received !== settings.flood) throw new Error(`${kind.name} flood: the receiver counted ${String(res.received)}, expected ${settings.flood}`)
      rates.push(settings.flood / ((res.elapsed_ms as number) / 1000))
    } finally {
      await stopEcho(echo)
    }
  }
  return median(rates)
}

/** RSS of agent 1 sampled every second while Node clients run round trips through it for `durationS`. */
async function agentMemory(mesh: Mesh, kind: ClientKind): Promise<{ samples: number[]; startBytes: number; endBytes: number; maxBytes: number; roundTrips: number }> {
  const pid = mesh.agents[0]!.proc.pid
  const echoId = uid('mem-echo')
  const echo = await startEcho(kind, mesh, echoId)
  const samples: number[] = [rssBytes(pid)]
  const end = Date.now() + settings.durationS * 1000
  const sampler = setInterval(() => samples.push(rssBytes(pid)), 1000)
  let roundTrips = 0
  try {
    while (Date.now() < end) {
      const n = 2000
      await runClient(kind, mesh, ['--id', uid('mem-ping'), '--mode', 'pingpong', '--peer', echoId, '--count', String(n), '--size', '64'], 120_000)
      roundTrips += n
    }
  } finally {
    clearInterval(sampler)
    await stopEcho(echo)
  }
  samples.push(rssBytes(pid))
  // Compare the end with the state after the first tenth of the run (allocator and JIT warm-up).
  const startBytes = samples[Math.min(samples.length - 1, Math.max(1, Math.floor(samples.length / 10)))]!
  return { samples, startBytes, endBytes: samples.at(-1)!, maxBytes: Math.max(...samples), roundTrips }
}

async function baseline(name: string): Promise<PingPongResult & { readonly repP50s: number[] }> {
  const variant = findVariant(name)
  if (variant === undefined) throw new Error(`no variant ${name}`)
  const cluster = await Cluster.start(variant, { downstreams: 2 })
  try {
    const runs: PingPongResult[] = []
    for (let r = 0; r < settings.repetitions; r++) runs.push(await pingPong(cluster, { from: 1, to: 2, size: settings.size, count: settings.count, warmup: settings.warmup }))
    const combined = combineRepetitions(runs)
    if (!combined.ok) throw new Error(`${name} ping-pong failed: ${combined.failure ?? ''}`)
    return { ...combined, repP50s: runs.map((r) => r.rtt.p50) }
  } finally {
    await cluster.close()
  }
}

/** Unmeasured Node round trips through both agents (a fresh echo and pinger). */
async function warmAgents(mesh: Mesh): Promise<void> {
  const node: ClientKind = { name: 'node', command: [process.execPath, NODE_CLIENT] }
  const echoId = uid('warm-echo')
  const echo = await startEcho(node, mesh, echoId)
  try {
    await runClient(node, mesh, ['--id', uid('warm-ping'), '--mode', 'pingpong', '--peer', echoId, '--count', String(settings.agentWarmup), '--size', String(settings.size)], 300_000)
  } finally {
    await stopEcho(echo)
  }
}

/** `run` once per repetition. */
async function repeat<T>(run: () => Promise<T>): Promise<T[]> {
  const out: T[] = []
  for (let r = 0; r < settings.repetitions; r++) out.push(await run())
  return out
}

// ---------------------------------------------------------------- main

const lines: string[] = []
const say = (line: string): void => { lines.push(line); process.stdout.write(`${line}\n`) }
const ratio = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '—')
const verdict = (ok: boolean): string => (ok ? 'met' : 'NOT MET')

const dir = mkdtempSync(join(tmpdir(), 'wm-bench-agent-'))
const results: Record<string, unknown> = { settings, clients: {} as Record<string, unknown> }
try {
  say(`machine: ${availableParallelism()} CPUs, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')} at start (figures are noisy on a shared machine: compare ratios within one run)`)
  say(`bench:agent — agents warmed with ${settings.agentWarmup} round trips; ${settings.size}-B round trips (${settings.count} + ${settings.warmup} warm-up), flood ${settings.flood} (+ ${settings.floodWarmup} warm-up), memory run ${settings.durationS} s, medians of ${settings.repetitions}; agents with WARPMESH_AGENT_CLIENT_BUFFER=${BENCH_CLIENT_BUFFER}`)
  const rawRuns = await repeat(() => rawUnixRoundTrip(dir, settings.count, settings.warmup))
  const raw = medianSummary(rawRuns)
  results.rawUnix = raw
  results.rawUnixRepP50s = rawRuns.map((r) => r.p50)
  say(formatLine('raw Unix socket round trip', [`p50 ${formatMicros(raw.p50)}`, `p99 ${formatMicros(raw.p99)}`]))
  let direct: (PingPongResult & { readonly repP50s: number[] }) | undefined
  let rawDgram: PingPongResult | undefined
  let rawRelay: Summary | undefined
  if (settings.baselines) {
    direct = await baseline('warpmesh')
    results.directMesh = direct.rtt
    results.directMeshRepP50s = direct.repP50s
    say(formatLine('direct MeshNode↔MeshNode', [`p50 ${formatMicros(direct.rtt.p50)}`, `p99 ${formatMicros(direct.rtt.p99)}`]))
    const star = await baseline('tcp-star')
    results.tcpStar = star.rtt
    say(formatLine('TCP star d1↔d2 (relayed)', [`p50 ${formatMicros(star.rtt.p50)}`, `p99 ${formatMicros(star.rtt.p99)}`]))
    rawDgram = await baseline('raw-dgram')
    results.rawDgram = rawDgram.rtt
    say(formatLine('raw dgram d1↔d2 (no protocol)', [`p50 ${formatMicros(rawDgram.rtt.p50)}`, `p99 ${formatMicros(rawDgram.rtt.p99)}`]))
    const relayRun = combinePathRuns(await repeat(() => rawRelayRoundTrip(dir, settings.count, settings.warmup)))
    rawRelay = relayRun.rtt
    results.rawRelay = rawRelay
    results.rawRelayCpu = relayRun.cpu
    say(formatLine('raw relays (agent topology, no work)', [`p50 ${formatMicros(rawRelay.p50)}`, `p99 ${formatMicros(rawRelay.p99)}`, cpuText(relayRun.cpu, 'both relays')]))
  }
  const mesh = await startMesh(dir)
  const byClient = results.clients as Record<string, { rtt?: Summary; cpu?: PathCpu; repP50s?: number[]; floodPerSecond?: number; skipped?: string }>
  try {
    const kinds = clientKinds()
    // The agents' code warms up (V8 optimizes late) before any client is measured, so the
    // first client measured does not pay for it and the languages compare fairly.
    await warmAgents(mesh)
    for (const kind of kinds) {
      if (kind.command === null) {
        byClient[kind.name] = { skipped: kind.missing! }
        say(formatLine(`${kind.name} client`, [`skipped: ${kind.missing!}`]))
        continue
      }
      const { rtt, cpu, repP50s } = await agentRoundTrip(kind, mesh)
      const flood = await agentFlood(kind, mesh)
      byClient[kind.name] = { rtt, cpu, repP50s, floodPerSecond: flood }
      say(formatLine(`${kind.name} client via 2 agents`, [`p50 ${formatMicros(rtt.p50)}`, `p99 ${formatMicros(rtt.p99)}`, `one-way 64 B ${formatRate(flood)}`, cpuText(cpu, 'both agents')]))
    }
    const node = kinds.find((k) => k.name === 'node' && k.command !== null)
    if (node !== undefined) {
      const mem = await agentMemory(mesh, node)
      results.memory = mem
      const mb = (b: number): string => `${(b / 1024 / 1024).toFixed(1)} MiB`
      say(formatLine(`agent RSS over ${settings.durationS} s`, [`after warm-up ${mb(mem.startBytes)}`, `end ${mb(mem.endBytes)}`, `max ${mb(mem.maxBytes)}`, `(${mem.roundTrips} round trips)`]))
    }
  } finally {
    await mesh.close()
  }

  say('')
  say('Goals:')
  const nodeRtt = byClient.node?.rtt
  if (direct !== undefined && nodeRtt !== undefined) {
    const added = nodeRtt.p50 - direct.rtt.p50
    const r = added / (2 * raw.p50)
    results.goalAgentOverhead = r
    say(`  agent adds ${formatMicros(added)} to the direct mesh p50 = ${ratio(r)} × two raw Unix round trips (goal ≤ 1.30): ${verdict(r <= 1.3)}`)
    // Each repetition on its own (the i-th of each measurement): how much the machine's noise moves the ratio.
    const reps = byClient.node?.repP50s ?? []
    const rawReps = results.rawUnixRepP50s as number[]
    const repRatios = reps.map((p50, i) => (p50 - direct!.repP50s[i]!) / (2 * rawReps[i]!))
    results.goalAgentOverheadByRepetition = repRatios
    say(`    each repetition: ${repRatios.map(ratio).join(' / ')}`)
    if (rawDgram !== undefined && rawRelay !== undefined) {
      // The floor: the same processes and hops with no work in them, against a raw UDP round trip.
      const floorAdded = rawRelay.p50 - rawDgram.rtt.p50
      const f = floorAdded / (2 * raw.p50)
      results.floorAgentOverhead = f
      results.agentOverVsFloor = added / floorAdded
      say(`    floor: the agent's topology with no work (raw relays − raw dgram) adds ${formatMicros(floorAdded)} = ${ratio(f)} × two raw Unix round trips${f > 1.3 ? ' — the goal lies below this floor' : ''}; the agent adds ${ratio(added / floorAdded)} × the floor's`)
    }
  }
  const javaRtt = byClient.java?.rtt
  if (javaRtt !== undefined && nodeRtt !== undefined) {
    const r = javaRtt.p50 / nodeRtt.p50
    results.goalJavaVsNode = r
    say(`  Java p50 / Node p50 = ${ratio(r)} (goal ≤ 1.20): ${verdict(r <= 1.2)}`)
  } else say(`  Java p50 / Node p50: ${byClient.java?.skipped ?? 'not measured'}`)
  for (const [name, goal] of [['java', 200_000], ['php', 100_000]] as const) {
    const rate = byClient[name]?.floodPerSecond
    if (rate !== undefined) say(`  ${name} one-way 64 B: ${formatRate(rate)} = ${ratio(rate / goal)} × the goal of ${formatRate(goal)}: ${verdict(rate >= goal)}`)
    else say(`  ${name} one-way 64 B (goal ≥ ${formatRate(goal)}): ${byClient[name]?.skipped ?? 'not measured'}`)
  }
  if (byClient.node?.floodPerSecond !== undefined) say(`  node one-way 64 B: ${formatRate(byClient.node.floodPerSecond)} (no goal; reported)`)
  const mem = results.memory as { startBytes: number; endBytes: number } | undefined
  if (mem !== undefined) {
    const r = mem.endBytes / mem.startBytes
    results.goalMemory = r
    say(`  agent RSS end / after warm-up = ${ratio(r)} over ${settings.durationS} s (flat: ≤ 1.10): ${verdict(r <= 1.1)}`)
  }
  writeFileSync(jsonPath, `${JSON.stringify(results, null, 2)}\n`)
  writeFileSync(mdPath, [
    '# Agent benchmark',
    '',
    `Written by \`npm run bench:agent${quick ? ' -- --quick' : ''}\` (${new Date().toISOString()}, Node ${process.version}).`,
    '',
    '```',
    ...lines,
    '```',
    '',
  ].join('\n'))
  process.stdout.write(`\nwrote ${mdPath} and ${jsonPath}\n`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}

/**
 * What the start-up warm-up ({@link warmUp}, `MeshNode.start({ warmup })`,
 * `WARPMESH_WARMUP`) buys freshly started nodes, measured where its absence
 * shows most: the comparison bench's fan-out (the proxy broadcasts to 8
 * (`--downstreams`) downstreams, each answers; a round ends when all answers are in), on a
 * cluster of new warpmesh processes, so every downstream handles only the
 * ~1,100 messages of this case. Once with no warm-up, once with
 * `--round-trips` warm-up round trips in every node process before it
 * binds; the two alternate over `--runs` runs (a new cluster each), and the
 * figures are medians over the runs: the round's p50, and the CPU per round
 * of all processes and of the median downstream (from /proc, as
 * `npm run bench` measures it).
 *
 * First it times the warm-up itself in this process: both halves, as
 * `MeshNode.start` runs them ({@link warmUp}, then {@link warmUpMesh}), wall
 * time and CPU.
 *
 *   npm run build && node dist/bench/warmup.js [--runs N (3)] [--rounds N (1000)] [--round-trips N (3000)] [--downstreams N (8)]
 */
import { Cluster } from './harness/cluster.js'
import { fanOut } from './harness/scenarios.js'
import { median } from './harness/stats.js'
import { BENCH_WARMUP_ENV, variant } from './variants/warpmesh.js'
import { warmUp } from '../lib/warmup.js'
import { warmUpMesh } from '../lib/mesh/warmup.js'
import { MeshNode } from '../lib/mesh/node.js'

interface Settings { runs: number, rounds: number, roundTrips: number, downstreams: number }

function parseArgs (argv: readonly string[]): Settings {
  const s: Settings = { runs: 3, rounds: 1000, roundTrips: 3000, downstreams: 8 }
  const names = { '--runs': 'runs', '--rounds': 'rounds', '--round-trips': 'roundTrips', '--downstreams': 'downstreams' } as const
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i] as keyof typeof names]
    const n = Number(argv[i + 1])
    if (key === undefined || !Number.isInteger(n) || n < 1) {
      process.stderr.write(`usage: node dist/bench/warmup.js [--runs N] [--rounds N] [--round-trips N] [--downstreams N] (positive integers; got ${argv[i]} ${argv[i + 1]})\n`)
      process.exit(2)
    }
    s[key] = n
  }
  return s
}

interface Run { p50: number, cpuUsPerRound: number, downstreamUs: number }

async function run (s: Settings, warm: number): Promise<Run> {
  process.env[BENCH_WARMUP_ENV] = String(warm) // inherited by the node processes
  const cluster = await Cluster.start(variant, { downstreams: s.downstreams, startTimeoutMs: 60_000, taskTimeoutMs: 120_000 })
  try {
    const f = await fanOut(cluster, { size: 64, rounds: s.rounds, warmup: 100 })
    if (!f.ok) throw new Error(`fan-out failed: ${f.failure ?? ''}`)
    const downstreams = Object.entries(f.cpuUsPerRoundByProcess).filter(([name]) => /^d\d+$/.test(name)).map(([, v]) => v)
    return { p50: f.allReceived.p50, cpuUsPerRound: f.cpuUsPerRound, downstreamUs: median(downstreams) }
  } finally {
    await cluster.close()
  }
}

async function main (): Promise<void> {
  const s = parseArgs(process.argv.slice(2))
  // What it costs: the warm-up alone, in this (otherwise idle) process, both halves as MeshNode.start runs them.
  const cpu0 = process.cpuUsage()
  const cost = await warmUp({ roundTrips: s.roundTrips, timeoutMs: 20_000 })
  const mesh = await warmUpMesh((o) => MeshNode.start(o), { roundTrips: s.roundTrips, protect: true, timeoutMs: 20_000 })
  const cpu = process.cpuUsage(cpu0)
  const stopped = (r: { stopped?: string }): string => (r.stopped === undefined ? '' : ` (stopped: ${r.stopped})`)
  process.stdout.write(`warm-up of ${s.roundTrips} round trips here: endpoint half ${cost.roundTrips} in ${cost.ms.toFixed(0)} ms${stopped(cost)}, ` +
    `node half ${mesh.roundTrips} in ${mesh.ms.toFixed(0)} ms${stopped(mesh)}; CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms\n`)
  const modes = [0, s.roundTrips]
  const results = new Map<number, Run[]>(modes.map((m) => [m, []]))
  const label = (warm: number): string => (warm === 0 ? 'no warm-up' : `warm-up ${warm} round trips`)
  for (let r = 0; r < s.runs; r++) {
    for (const warm of r % 2 === 0 ? modes : [...modes].reverse()) {
      const x = await run(s, warm)
      results.get(warm)!.push(x)
      process.stdout.write(`run ${r + 1}/${s.runs} ${label(warm)}: p50 ${x.p50.toFixed(0)} µs, CPU per round ${x.cpuUsPerRound.toFixed(0)} µs (median downstream ${x.downstreamUs.toFixed(0)} µs)\n`)
    }
  }
  process.stdout.write(`\nfan-out, proxy → ${s.downstreams} downstreams, 64 B, ${s.rounds} rounds on new processes; medians of ${s.runs} runs:\n`)
  for (const warm of modes) {
    const xs = results.get(warm)!
    const m = (f: (x: Run) => number): string => median(xs.map(f)).toFixed(0).padStart(5)
    process.stdout.write(`  ${label(warm).padEnd(28)} p50 ${m((x) => x.p50)} µs   CPU per round ${m((x) => x.cpuUsPerRound)} µs   median downstream ${m((x) => x.downstreamUs)} µs\n`)
  }
}

await main()

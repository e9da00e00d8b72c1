/**
 * The comparison bench's fan-out, block after block on one cluster: how the
 * first block of rounds (what `npm run bench` measures, on new processes)
 * compares with the later ones, once every process's code has been
 * optimized. For each variant (a new cluster of `--downstreams` downstreams
 * each, the variants alternating their order over `--runs` runs), `--blocks`
 * consecutive blocks of `--rounds` rounds, the first after the bench's 100
 * unmeasured rounds; per block the round's p50, the CPU per round of all
 * processes, of the proxy and of the mean downstream, a downstream's CPU split
 * into its main thread and its other threads (V8's optimizing compiler,
 * mostly), and the UDP datagrams per round the machine sent (/proc/net/snmp:
 * run it on an otherwise quiet loopback).
 *
 *   npm run bench:fanout-blocks -- [--variants warpmesh,sealed-dgram,tcp-star] [--downstreams 16] [--blocks 5] [--rounds 1000] [--runs 1]
 */
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { Cluster } from './harness/cluster.js'
import { threadCpuUs } from './harness/cpu.js'
import { fanOut } from './harness/scenarios.js'
import { findVariant, variants } from './variants/index.js'

/** One block of rounds. */
export interface Block {
  /** Round p50, µs. */
  readonly p50: number
  /** CPU per round of every process, µs. */
  readonly cpu: number
  /** CPU per round of the proxy, µs. */
  readonly proxy: number
  /** CPU per round of the mean downstream, µs. */
  readonly downstream: number
  /** CPU per round of the mean downstream's main thread and of its other threads, µs. */
  readonly downstreamMain: number
  readonly downstreamOther: number
  /** UDP datagrams the machine sent per round (every process's, the harness's IPC is not UDP). */
  readonly udpPerRound: number
}

/** Options of {@link fanOutBlocks}. */
export interface BlocksOptions {
  readonly downstreams: number
  readonly blocks: number
  readonly rounds: number
  /** Unmeasured rounds before the first block. Default 100, as `npm run bench`. */
  readonly warmup?: number
}

function udpDatagramsSent (): number {
  try {
    const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'))
    const names = lines[0]!.trim().split(/\s+/)
    const values = lines[1]!.trim().split(/\s+/)
    return Number(values[names.indexOf('OutDatagrams')])
  } catch {
    return NaN
  }
}

/** Run `blocks` consecutive fan-out blocks on one new cluster of `variant`. */
export async function fanOutBlocks (variantName: string, o: BlocksOptions): Promise<Block[]> {
  const variant = findVariant(variantName)
  if (variant === undefined) throw new RangeError(`no variant ${variantName}; known: ${variants.map((v) => v.name).join(', ')}`)
  const cluster = await Cluster.start(variant, { downstreams: o.downstreams })
  try {
    const downstreams = cluster.nodes.filter((n) => n.name !== 'proxy')
    const out: Block[] = []
    for (let b = 0; b < o.blocks; b++) {
      const threadsBefore = downstreams.map((n) => threadCpuUs(n.pid))
      const udpBefore = udpDatagramsSent()
      const warmup = b === 0 ? (o.warmup ?? 100) : 0
      const r = await fanOut(cluster, { rounds: o.rounds, warmup })
      const udpAfter = udpDatagramsSent()
      const threadsAfter = downstreams.map((n) => threadCpuUs(n.pid))
      // The threads are read around the whole call (its unmeasured rounds too): per round of those.
      const roundsRun = r.completedRounds + warmup
      const perDownstream = (k: 'main' | 'other'): number =>
        threadsAfter.reduce((s, t, i) => s + t[k] - threadsBefore[i]![k], 0) / downstreams.length / roundsRun
      const byProcess = r.cpuUsPerRoundByProcess
      const ds = downstreams.map((n) => byProcess[n.name] ?? NaN)
      out.push({
        p50: r.allReceived.p50,
        cpu: r.cpuUsPerRound,
        proxy: byProcess.proxy ?? NaN,
        downstream: ds.reduce((s, v) => s + v, 0) / ds.length,
        downstreamMain: perDownstream('main'),
        downstreamOther: perDownstream('other'),
        udpPerRound: (udpAfter - udpBefore) / roundsRun,
      })
      if (!r.ok) throw new Error(`${variantName} block ${b + 1}: ${r.failure ?? 'failed'}`)
    }
    return out
  } finally {
    await cluster.close()
  }
}

/** One line of the table. */
export function formatBlock (variant: string, index: number, b: Block): string {
  const f = (n: number): string => Number.isFinite(n) ? n.toFixed(0).padStart(6) : '     —'
  return `${variant.padEnd(14)} ${String(index + 1).padStart(5)} ${f(b.p50)} ${f(b.cpu)} ${f(b.proxy)} ${f(b.downstream)} ${f(b.downstreamMain)} ${f(b.downstreamOther)} ${Number.isFinite(b.udpPerRound) ? b.udpPerRound.toFixed(1).padStart(6) : '     —'}`
}

export const HEADER = `${'variant'.padEnd(14)} block    p50    cpu  proxy     ds ds-main ds-oth udp/rd   (µs; CPU per round)`

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      variants: { type: 'string', default: 'warpmesh,sealed-dgram,tcp-star' },
      downstreams: { type: 'string', default: '16' },
      blocks: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '1000' },
      runs: { type: 'string', default: '1' },
    },
  })
  const int = (name: string, v: string): number => {
    const n = Number(v)
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`--${name} must be a positive integer, got ${v}`)
    return n
  }
  const names = values.variants.split(',').filter((s) => s !== '')
  for (const n of names) if (findVariant(n) === undefined) throw new RangeError(`--variants: no variant ${n}; known: ${variants.map((v) => v.name).join(', ')}`)
  const o = { downstreams: int('downstreams', values.downstreams), blocks: int('blocks', values.blocks), rounds: int('rounds', values.rounds) }
  const runs = int('runs', values.runs)
  process.stdout.write(`fan-out to ${o.downstreams}, ${o.blocks} blocks of ${o.rounds} rounds after 100 unmeasured; ${runs} run(s), a new cluster each\n${HEADER}\n`)
  for (let run = 0; run < runs; run++) {
    const order = run % 2 === 0 ? names : [...names].reverse()
    for (const name of order) {
      const blocks = await fanOutBlocks(name, o)
      blocks.forEach((b, i) => process.stdout.write(`${formatBlock(name, i, b)}\n`))
    }
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(() => process.exit(0), (err: unknown) => {
    process.stderr.write(`bench:fanout-blocks: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  })
}

/**
 * Mesh benchmark (`npm run bench:mesh`).
 *
 * 1. Joins in the simulated network (fake clock, 0.5 ms one-way delay):
 *    N nodes start at once against one coordinator; simulated time until
 *    every table is complete, control bytes per node; then one more node
 *    joins and we count the bytes it cost each existing node and the
 *    coordinator — for N = 100, 300, 1000, to show the per-node cost of a
 *    join does not grow with the network.
 * 2. Downstream ↔ downstream round trip on 127.0.0.1, 64-byte ping-pong,
 *    through the mesh (two MeshNodes, protected sessions, direct path) vs raw
 *    `dgram` sockets, in the same process and the same run.
 *
 * Options: `--sizes 100,300,1000`, `--rounds 5000`, `--json out.json`.
 * Every case checks what it received and fails loudly otherwise.
 */
import { createSocket } from 'node:dgram'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { Endpoint } from '../lib/endpoint.js'
import { FakeClock, SimNetwork } from '../lib/testing.js'
import { Coordinator } from '../lib/mesh/coordinator.js'
import { MeshNode, type MeshMessage } from '../lib/mesh/node.js'
import { meshEndpointOptions } from '../lib/mesh/control.js'

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback
}

const sizes = arg('sizes', '100,300,1000').split(',').map(Number)
const rounds = Number(arg('rounds', '5000'))
const jsonPath = process.argv.includes('--json') ? arg('json', 'bench-mesh.json') : null
const results: Record<string, unknown>[] = []

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

async function simJoin(n: number): Promise<Record<string, number>> {
  const clock = new FakeClock()
  const net = new SimNetwork({ clock, seed: n, delayMs: 0.5 })
  const heartbeatMs = 1000
  const key = randomBytes(32)
  const endpoint = (address: string, port = 0): Endpoint => new Endpoint(net.bind(address, port), {
    ...meshEndpointOptions({ heartbeatMs }), keys: [key], clock,
  })
  const drive = async (pred: () => boolean, maxMs: number, step = 1): Promise<boolean> => {
    const end = clock.now() + maxMs
    await turn()
    while (!pred()) {
      if (clock.now() >= end) return false
      clock.advance(step)
      await turn()
    }
    return true
  }
  const coord = await Coordinator.start({ endpoint: endpoint('10.0.0.1', 7400), clock, heartbeatMs })
  const start = (i: number): Promise<MeshNode> => MeshNode.start({
    id: `n${i}`, endpoint: endpoint(`10.1.${i >> 8}.${i & 255}`), clock, heartbeatMs,
    coordinators: [{ host: '10.0.0.1', port: 7400 }],
  })
  const t0 = clock.now()
  const cpu0 = process.cpuUsage()
  const wall0 = performance.now()
  let nodes: MeshNode[] = []
  let started = false
  void Promise.all(Array.from({ length: n }, (_, i) => start(i))).then((all) => { nodes = all; started = true })
  if (!await drive(() => started, 30_000)) throw new Error(`${n} nodes did not start`)
  const complete = (k: number): boolean => nodes.every((x) => x.peers().length === k - 1)
  if (!await drive(() => complete(n), 30_000)) throw new Error(`${n} tables did not converge`)
  const convergeMs = clock.now() - t0
  const wallMs = performance.now() - wall0
  const cpu = process.cpuUsage(cpu0)
  const controlPerNode = nodes.reduce((s, x) => s + x.stats().totals.coordinatorBytesSent + x.stats().totals.coordinatorBytesReceived, 0) / n
  // One more join on the converged network.
  const before = nodes.map((x) => x.stats().totals.coordinatorBytesReceived)
  const wireBefore = nodes.map((x) => x.endpoint.stats().bytesReceived + x.endpoint.stats().bytesSent)
  const coordBefore = coord.stats().controlBytesSent
  let extra: MeshNode | null = null
  void start(n).then((x) => { extra = x })
  if (!await drive(() => extra !== null && complete(n + 1) && extra.peers().length === n, 10_000)) throw new Error('the extra join did not converge')
  const perExisting = nodes.map((x, i) => x.stats().totals.coordinatorBytesReceived - before[i])
  const joinBytesPerNode = perExisting.reduce((s, b) => s + b, 0) / n
  const joinBytesMax = Math.max(...perExisting)
  // On the wire: datagram headers, AEAD tags and the acks the delta causes, both directions (heartbeats excluded: < 1 s passed).
  const joinWireBytesPerNode = nodes.reduce((sum, x, i) => sum + x.endpoint.stats().bytesReceived + x.endpoint.stats().bytesSent - wireBefore[i], 0) / n
  const joinCoordinatorBytes = coord.stats().controlBytesSent - coordBefore
  const joinerBytes = extra!.stats().totals.coordinatorBytesReceived + extra!.stats().totals.coordinatorBytesSent
  for (const x of [...nodes, extra!]) void x.close()
  await drive(() => false, 3000, 10)
  await coord.close()
  return {
    nodes: n, convergeMs, wallMs: Math.round(wallMs), cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    controlBytesPerNode: Math.round(controlPerNode), joinBytesPerNode, joinWireBytesPerNode, joinBytesMax, joinCoordinatorBytes, joinerBytes,
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
}

function summary(samples: number[]): { p50: number; p99: number; mean: number } {
  const s = [...samples].sort((a, b) => a - b)
  return { p50: percentile(s, 0.5), p99: percentile(s, 0.99), mean: s.reduce((a, b) => a + b, 0) / s.length }
}

async function meshRtt(): Promise<{ p50: number; p99: number; mean: number }> {
  const keys = [randomBytes(32)]
  const coord = await Coordinator.start({ address: '127.0.0.1', port: 0, keys })
  const coordinators = [{ host: '127.0.0.1', port: coord.port }]
  const a = await MeshNode.start({ id: 'd1', address: '127.0.0.1', keys, coordinators })
  const b = await MeshNode.start({ id: 'd2', address: '127.0.0.1', keys, coordinators })
  const deadline = Date.now() + 5000
  while (!a.peers().some((p) => p.id === 'd2')) {
    if (Date.now() > deadline) throw new Error('d1 never saw d2')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  b.on('message', (m: MeshMessage) => { b.send(m.from, m.data) })
  const samples: number[] = []
  const payload = Buffer.alloc(64)
  await new Promise<void>((resolve, reject) => {
    let i = 0
    let sentAt = 0n
    const ping = (): void => {
      payload.writeUInt32BE(i, 0)
      sentAt = process.hrtime.bigint()
      a.send('d2', Buffer.from(payload))
    }
    a.on('message', (m: MeshMessage) => {
      const rtt = Number(process.hrtime.bigint() - sentAt) / 1000
      if (m.data.length !== 64 || Buffer.from(m.data).readUInt32BE(0) !== i) return reject(new Error(`mesh: wrong echo at round ${i}`))
      if (i >= 200) samples.push(rtt)
      if (++i === rounds + 200) resolve()
      else ping()
    })
    ping()
  })
  const coordStats = coord.stats()
  if (coordStats.dataFramesRelayed !== 0 || coordStats.dataMessagesReceived !== 0) throw new Error('data went through the coordinator')
  await Promise.all([a.close(), b.close()])
  await coord.close()
  return summary(samples)
}

async function rawRtt(): Promise<{ p50: number; p99: number; mean: number }> {
  const bind = (): Promise<ReturnType<typeof createSocket>> => new Promise((resolve) => {
    const s = createSocket('udp4')
    s.bind(0, '127.0.0.1', () => resolve(s))
  })
  const [x, y] = await Promise.all([bind(), bind()])
  y.on('message', (msg, rinfo) => { y.send(msg, rinfo.port, rinfo.address) })
  const samples: number[] = []
  const payload = Buffer.alloc(64)
  await new Promise<void>((resolve, reject) => {
    let i = 0
    let sentAt = 0n
    const ping = (): void => {
      payload.writeUInt32BE(i, 0)
      sentAt = process.hrtime.bigint()
      x.send(payload, y.address().port, '127.0.0.1')
    }
    x.on('message', (msg) => {
      const rtt = Number(process.hrtime.bigint() - sentAt) / 1000
      if (msg.length !== 64 || msg.readUInt32BE(0) !== i) return reject(new Error(`raw: wrong echo at round ${i}`))
      if (i >= 200) samples.push(rtt)
      if (++i === rounds + 200) resolve()
      else ping()
    })
    ping()
  })
  x.close()
  y.close()
  return summary(samples)
}

console.log('# joins in the simulated network (0.5 ms one-way delay, heartbeat 1000 ms, protected sessions)')
for (const n of sizes) {
  const r = await simJoin(n)
  results.push({ case: 'sim-join', ...r })
  console.log(`join  nodes=${String(n).padStart(5)}  converged in ${r.convergeMs} ms simulated (${r.wallMs} ms wall, ${r.cpuMs} ms CPU)` +
    `  control bytes/node=${r.controlBytesPerNode}` +
    `  one more join: ${r.joinBytesPerNode.toFixed(1)} B per existing node (max ${r.joinBytesMax}; ${r.joinWireBytesPerNode.toFixed(1)} B on the wire incl. headers, tag, ack), joiner ${r.joinerBytes} B, coordinator sent ${r.joinCoordinatorBytes} B`)
}
console.log('# downstream <-> downstream round trip, 64 B, 127.0.0.1, same process')
const raw = await rawRtt()
const mesh = await meshRtt()
results.push({ case: 'rtt-raw-dgram', rounds, ...raw }, { case: 'rtt-mesh', rounds, ...mesh })
const f = (x: number): string => x.toFixed(1).padStart(6)
console.log(`rtt   raw dgram       p50=${f(raw.p50)} µs  p99=${f(raw.p99)} µs  mean=${f(raw.mean)} µs  (${rounds} rounds)`)
console.log(`rtt   mesh (direct)   p50=${f(mesh.p50)} µs  p99=${f(mesh.p99)} µs  mean=${f(mesh.mean)} µs  (${rounds} rounds)  ratio p50 ${(mesh.p50 / raw.p50).toFixed(2)}×`)
if (jsonPath !== null) writeFileSync(jsonPath, JSON.stringify(results, null, 2))
process.exit(0)

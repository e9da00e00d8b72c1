/**
 * The Node program of the bench/test client contract (see docs/agent.md,
 * "Bench/test client contract"): the same command line as the Java and PHP
 * clients, used by `npm run bench:agent` and the cross-language test.
 *
 *   node dist/bench/agent-client.js (--socket PATH | --tcp HOST:PORT --token T)
 *     --id ID [--role ROLE] [--topic T]... [--meta k=v]...
 *     --mode echo|pingpong|flood|repl [--peer ID --count N --size BYTES] [--warmup W] [--timeout-ms MS]
 *
 * Prints `ready` once welcomed. Exit codes: 0 ok, 1 error, 2 peer never
 * appeared, 3 reply mismatch, 4 flood count not reached in time.
 */
import { randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import {
  AgentClient, type AgentClientOptions, type AgentMessageEvent, type AgentPeer, type AgentRequestEvent,
} from '../lib/agent/client.js'

const now = process.hrtime.bigint
const out = (line: unknown): void => { process.stdout.write(`${typeof line === 'string' ? line : JSON.stringify(line)}\n`) }
const fail = (code: number, message: string): never => {
  process.stderr.write(`agent-client: ${message}\n`)
  process.exit(code)
}

const { values } = parseArgs({
  options: {
    socket: { type: 'string' }, tcp: { type: 'string' }, token: { type: 'string' },
    id: { type: 'string' }, role: { type: 'string' }, topic: { type: 'string', multiple: true }, meta: { type: 'string', multiple: true },
    mode: { type: 'string' }, peer: { type: 'string' }, count: { type: 'string' }, size: { type: 'string' },
    warmup: { type: 'string' }, 'timeout-ms': { type: 'string' },
  },
  strict: true,
})

const id = values.id ?? fail(1, '--id is required')
const mode = values.mode ?? fail(1, '--mode is required (echo, pingpong, flood or repl)')
const int = (name: string, text: string | undefined, fallback: number): number => {
  if (text === undefined) return fallback
  const n = Number(text)
  if (!Number.isInteger(n) || n < 0) fail(1, `--${name} must be a whole number, got ${JSON.stringify(text)}`)
  return n
}
const count = int('count', values.count, 1000)
const size = int('size', values.size, 64)
const warmup = int('warmup', values.warmup, 0)
const timeoutMs = int('timeout-ms', values['timeout-ms'], 10_000)

function metaOf(pairs: readonly string[]): Record<string, string> {
  const meta: Record<string, string> = {}
  for (const p of pairs) {
    const eq = p.indexOf('=')
    if (eq <= 0) fail(1, `bad meta ${JSON.stringify(p)}: expected k=v`)
    meta[p.slice(0, eq)] = p.slice(eq + 1)
  }
  return meta
}

const options: AgentClientOptions = { id, meta: metaOf(values.meta ?? []), topics: values.topic ?? [], client: 'warpmesh-node-bench' }
if (values.role !== undefined) options.role = values.role
if (values.tcp !== undefined) {
  const colon = values.tcp.lastIndexOf(':')
  options.tcp = { host: values.tcp.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(values.tcp.slice(colon + 1)) }
  options.token = values.token ?? ''
} else if (values.socket !== undefined) options.socket = values.socket

const client = await AgentClient.connect(options).catch((err: Error & { code?: string }) => fail(1, `cannot connect: ${err.message} (${err.code ?? 'error'})`))
client.on('agent-error', (err: Error & { code: string }) => { process.stderr.write(`agent-client: agent error ${err.code}: ${err.message}\n`) })
out('ready')

async function waitPeer(peer: string): Promise<void> {
  if (client.hasPeer(peer)) return
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => fail(2, `peer ${JSON.stringify(peer)} did not appear within ${timeoutMs} ms`), timeoutMs)
    const up = (p: AgentPeer): void => {
      if (p.id !== peer) return
      clearTimeout(timer)
      client.off('peer-up', up)
      resolve()
    }
    client.on('peer-up', up)
  })
}

async function leave(code = 0): Promise<never> {
  await client.close('done')
  process.exit(code)
}

switch (mode) {
  case 'echo': {
    let received = 0
    client.on('message', () => { received++ })
    client.on('request', (r: AgentRequestEvent) => {
      client.reply(r.id, r.data.length === 0 ? Buffer.from(String(received)) : r.data)
    })
    const stop = (): void => { void leave(0) }
    process.once('SIGTERM', stop)
    process.stdin.on('end', stop)
    process.stdin.resume()
    break
  }
  case 'pingpong': {
    const peer = values.peer ?? fail(1, '--peer is required')
    await waitPeer(peer)
    const rtt: number[] = []
    for (let i = 0; i < warmup + count; i++) {
      const data = randomBytes(size)
      const t0 = now()
      const reply = await client.request(peer, data).catch((err: Error & { code?: string }) => fail(1, `request ${i}: ${err.code ?? ''} ${err.message}`))
      const t1 = now()
      if (!Buffer.from(data).equals(Buffer.from(reply))) fail(3, `reply ${i} differs from the request (${reply.length} bytes)`)
      if (i >= warmup) rtt.push(Math.round(Number(t1 - t0) / 100) / 10)
    }
    out({ mode: 'pingpong', count, rtt_us: rtt })
    await leave(0)
    break
  }
  case 'flood': {
    const peer = values.peer ?? fail(1, '--peer is required')
    await waitPeer(peer)
    const payload = randomBytes(size)
    // Warm-up: W untimed messages, counted by the peer, before the timed N.
    if (warmup > 0) await floodPhase(peer, payload, warmup, warmup, Date.now() + timeoutMs)
    const t0 = now()
    const received = await floodPhase(peer, payload, count, warmup + count, Date.now() + timeoutMs)
    const elapsedMs = Number(now() - t0) / 1e6
    out({ mode: 'flood', count, elapsed_ms: Math.round(elapsedMs * 1000) / 1000, received: received - warmup })
    await leave(0)
    break
  }
  case 'repl':
    runRepl()
    break
  default:
    fail(1, `unknown --mode ${JSON.stringify(mode)}`)
}

/** Send `n` one-way messages, then poll the peer's count until it reaches `target`; returns the count. */
async function floodPhase(peer: string, payload: Uint8Array, n: number, target: number, deadline: number): Promise<number> {
  for (let i = 0; i < n; i++) {
    if (!client.send(peer, payload)) await client.waitDrain()
  }
  for (;;) {
    const received = Number(Buffer.from(await client.request(peer, new Uint8Array(0))).toString())
    if (received === target) return received
    if (received > target) fail(4, `the peer counted ${received} messages, more than the ${target} sent`)
    if (Date.now() > deadline) fail(4, `the peer counted ${received} of ${target} messages within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
}

function peerJson(p: AgentPeer): Record<string, unknown> {
  return { id: p.id, role: p.role, meta: p.meta, topics: p.topics }
}

function runRepl(): void {
  const text = (d: Uint8Array): string => Buffer.from(d).toString('utf8')
  client.on('message', (m: AgentMessageEvent) => out({ ev: 'message', from: m.from, data: text(m.data), channel: m.channel, topic: m.topic }))
  client.on('request', (r: AgentRequestEvent) => client.reply(r.id, Buffer.from(`re:${text(r.data)}`)))
  client.on('peer-up', (p: AgentPeer) => out({ ev: 'peer-up', ...peerJson(p), reason: '' }))
  client.on('peer-updated', (p: AgentPeer) => out({ ev: 'peer-updated', ...peerJson(p), reason: '' }))
  client.on('peer-down', (p: AgentPeer, reason: string) => out({ ev: 'peer-down', ...peerJson(p), reason }))
  client.on('coordinator', (c: { up: boolean; address: string }) => out({ ev: 'coordinator', up: c.up, address: c.address }))
  client.on('disconnected', () => out({ ev: 'disconnected' }))
  client.on('reconnected', () => out({ ev: 'reconnected' }))
  const settle = (tag: string, p: Promise<unknown>, ok: (v: unknown) => Record<string, unknown>): void => {
    p.then((v) => out({ ev: 'result', tag, ...ok(v) }), (err: Error & { code?: string }) => out({ ev: 'error', tag, code: err.code ?? 'INTERNAL', message: err.message }))
  }
  const rl = createInterface({ input: process.stdin })
  rl.on('line', (line) => {
    const words = line.split(' ')
    const [cmd, tag = ''] = words
    const rest = (n: number): string => words.slice(n).join(' ')
    const buf = (s: string): Buffer => Buffer.from(s, 'utf8')
    try {
      switch (cmd) {
        case 'send': settle(tag, client.sendAcked(words[2] ?? '', buf(rest(3))), () => ({})); break
        case 'request':
          client.request(words[2] ?? '', buf(rest(3))).then(
            (d) => out({ ev: 'response', tag, data: text(d) }),
            (err: Error & { code?: string }) => out({ ev: 'error', tag, code: err.code ?? 'INTERNAL', message: err.message }),
          )
          break
        case 'broadcast': {
          const role = words[2] === '-' ? undefined : words[2]
          const tag2 = words[3] === '-' ? undefined : words[3]
          settle(tag, client.broadcast({ ...(role === undefined ? {} : { role }), ...(tag2 === undefined ? {} : { tag: tag2 }) }, buf(rest(4))), (n) => ({ count: n }))
          break
        }
        case 'publish': settle(tag, client.publish(words[2] ?? '', buf(rest(3))), (n) => ({ count: n })); break
        case 'subscribe': settle(tag, client.subscribe(words[2] ?? ''), () => ({})); break
        case 'unsubscribe': settle(tag, client.unsubscribe(words[2] ?? ''), () => ({})); break
        case 'meta': settle(tag, client.setMeta(metaOf((words[2] ?? '').split(',').filter((x) => x !== ''))), () => ({})); break
        case 'peers':
          client.getPeers().then(
            (peers) => out({ ev: 'peers', tag, peers: peers.map(peerJson) }),
            (err: Error & { code?: string }) => out({ ev: 'error', tag, code: err.code ?? 'INTERNAL', message: err.message }),
          )
          break
        case '':
          break
        default:
          out({ ev: 'error', tag, code: 'BAD_COMMAND', message: `unknown command ${JSON.stringify(cmd)}` })
      }
    } catch (err) {
      out({ ev: 'error', tag, code: (err as { code?: string }).code ?? 'INTERNAL', message: (err as Error).message })
    }
  })
  rl.on('close', () => { void leave(0) })
  process.once('SIGTERM', () => { void leave(0) })
}

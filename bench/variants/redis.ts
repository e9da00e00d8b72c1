/**
 * Redis pub/sub: every node is an ioredis client of a real `redis-server`
 * that the harness starts on a free port of its host and stops by PID.
 * Node `n` subscribes to channel `node:<n>` and to `node:all` (broadcast);
 * a message is `PUBLISH node:<to> <u16 from | payload>`.
 *
 * Each node uses two connections (a subscribed connection cannot publish);
 * the publishing one uses ioredis auto-pipelining, so everything published
 * during one tick goes out in one write. ioredis reconnects on its own with
 * the backoff below, resubscribes, and queues commands while offline.
 *
 * Needs `redis-server` on PATH (`apt-get install redis-server`); skipped
 * with that message otherwise.
 */

import { execFile } from 'node:child_process'
import { Redis } from 'ioredis'
import type { BenchNode, Directory, ExternalContext, ExternalService, MessageHandler, NodeContext, Variant } from '../harness/variant.js'
import { siblingModule } from '../harness/variant.js'

/** Id of the redis-server service. */
export const REDIS = 'redis'

/** Channel every node subscribes to for broadcasts. */
const BROADCAST_CHANNEL = 'node:all'

/** Outstanding (unanswered) publishes above which `send` returns false. */
const PUBLISH_HIGH_WATER = 4096

const FROM_BYTES = 2

/** How long redis-server may take to say it is ready. */
const START_TIMEOUT_MS = 10_000

function findRedisServer (): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('redis-server', ['--version'], { timeout: 5000 }, (err) => {
      resolve(err === null ? undefined : 'redis-server not found on PATH; install it with `apt-get install redis-server`')
    })
  })
}

/**
 * Start `redis-server` on the host: no persistence, bound to the host
 * address only. Resolves once it logs that it accepts connections; retries
 * on another port if the free port was taken meanwhile.
 */
async function startRedis (ctx: ExternalContext): Promise<ExternalService> {
  const previous = (ctx.previous as { port?: number } | undefined)?.port
  let lastError = ''
  for (let attempt = 0; attempt < 4; attempt++) {
    const port = previous ?? await ctx.freePort()
    const child = ctx.spawn('redis-server', [
      '--port', String(port),
      '--bind', ctx.host,
      '--save', '',
      '--appendonly', 'no',
      '--protected-mode', 'no',
      '--daemonize', 'no',
      '--loglevel', 'notice',
    ])
    const outcome = await new Promise<'ready' | string>((resolve) => {
      let log = ''
      const timer = setTimeout(() => finish(`no readiness line within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS)
      const onData = (chunk: Buffer): void => {
        log += chunk.toString()
        if (log.includes('Ready to accept connections')) finish('ready')
      }
      const onExit = (): void => finish(`exited early: ${log.trim().split('\n').slice(-3).join(' | ')}`)
      const finish = (r: string): void => {
        clearTimeout(timer)
        child.stdout?.removeListener('data', onData)
        child.removeListener('exit', onExit)
        child.stdout?.resume() // keep draining its log so it never blocks on a full pipe
        resolve(r)
      }
      child.stdout?.on('data', onData)
      child.once('exit', onExit)
    })
    if (outcome === 'ready') return { info: { port }, process: child }
    lastError = outcome
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
    if (previous !== undefined) break
  }
  throw new Error(`redis-server did not start: ${lastError}`)
}

/** Driver-side description. */
export const variant: Variant = {
  name: 'redis',
  summary: 'Redis pub/sub: every node an ioredis client of one redis-server, channel node:<id>',
  guarantees: { reliable: true, ordered: true },
  module: siblingModule(import.meta.url, 'redis'),
  services: [{ id: REDIS, launch: startRedis }],
  failureTarget: REDIS,
  checkAvailable: findRedisServer,
}

class RedisNode implements BenchNode {
  readonly info = null
  readonly #address: number
  #pub: Redis | undefined
  #sub: Redis | undefined
  #channels: string[] = []
  #handler: MessageHandler = () => {}
  #outstanding = 0
  #waiters: Array<() => void> = []
  #publishErrors = 0
  #unheard = 0
  #connectionErrors = 0

  constructor (address: number) {
    this.#address = address
  }

  async connect (directory: Directory): Promise<void> {
    const redis = directory.services[REDIS]
    if (redis === undefined) throw new Error('directory has no redis service')
    const options = {
      host: redis.host,
      port: (redis.info as { port: number }).port,
      lazyConnect: true,
      // Reconnect with backoff like the TCP clients: 50 ms doubling to 1 s.
      retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times - 1, 5), 1000),
      maxRetriesPerRequest: null,
    }
    this.#pub = new Redis({ ...options, enableAutoPipelining: true })
    this.#sub = new Redis(options)
    for (const c of [this.#pub, this.#sub]) c.on('error', () => { this.#connectionErrors++ })
    this.#channels = directory.nodes.map((n) => `node:${n.address}`)
    this.#sub.on('messageBuffer', this.#onMessage)
    await Promise.all([this.#pub.connect(), this.#sub.connect()])
    await this.#sub.subscribe(this.#channels[this.#address]!, BROADCAST_CHANNEL)
  }

  readonly #onMessage = (_channel: Buffer, message: Buffer): void => {
    const from = message.readUInt16LE(0)
    if (from === this.#address) return // our own broadcast
    this.#handler(from, message.subarray(FROM_BYTES))
  }

  readonly #onPublished = (err: Error | null | undefined, receivers?: number): void => {
    this.#outstanding--
    if (err) this.#publishErrors++
    else if (receivers === 0) this.#unheard++
    if (this.#waiters.length > 0 && this.#outstanding < PUBLISH_HIGH_WATER / 2) {
      const w = this.#waiters
      this.#waiters = []
      for (const f of w) f()
    }
  }

  #publish (channel: string, payload: Buffer): boolean {
    const msg = Buffer.allocUnsafe(FROM_BYTES + payload.length)
    msg.writeUInt16LE(this.#address, 0)
    payload.copy(msg, FROM_BYTES)
    this.#outstanding++
    this.#pub!.publish(channel, msg, this.#onPublished)
    return this.#outstanding < PUBLISH_HIGH_WATER
  }

  send (to: number, payload: Buffer): boolean {
    const channel = this.#channels[to]
    if (channel === undefined) return true
    return this.#publish(channel, payload)
  }

  broadcast (payload: Buffer): boolean {
    return this.#publish(BROADCAST_CHANNEL, payload)
  }

  writable (): Promise<void> {
    if (this.#outstanding < PUBLISH_HIGH_WATER) return Promise.resolve()
    return new Promise((resolve) => { this.#waiters.push(resolve) })
  }

  setHandler (handler: MessageHandler): void {
    this.#handler = handler
  }

  stats (): Record<string, number> {
    return {
      publishErrors: this.#publishErrors,
      unheard: this.#unheard,
      connectionErrors: this.#connectionErrors,
      outstanding: this.#outstanding,
    }
  }

  async close (): Promise<void> {
    this.#pub?.disconnect()
    this.#sub?.disconnect()
  }
}

/** Node-process entry. */
export async function createNode (ctx: NodeContext): Promise<BenchNode> {
  return new RedisNode(ctx.address)
}

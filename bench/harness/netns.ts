/**
 * Kernel packet loss for benchmarks: every host is its own network
 * namespace, joined to a bridge in a private "switch" namespace by a veth
 * pair, with an nftables rule dropping N % of the packets arriving on its
 * veth (`numgen random mod 100 < N drop`). The rule is on the input hook of
 * every host, so it applies equally to UDP and TCP and to both directions.
 *
 * Nothing is created in the initial namespace: veth ends are created
 * directly inside the namespaces, addresses are in the benchmarking range
 * 198.18.0.0/15, and no route leads anywhere else, so nothing is ever sent
 * outside these namespaces. Every namespace is deleted by {@link
 * NetnsNetwork.close}, and by an exit/signal hook if the driver dies first.
 *
 * Needs root, `ip` (iproute2) and `nft` (nftables): {@link checkNetnsSupport}
 * says why not when they are missing.
 */

import { execFile, execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import type { Host, Network } from './network.js'
import { addExitHook, removeExitHook, stopProcess, trackProcess, waitForExit } from './processes.js'

/** Prefix of every namespace this module creates. */
export const NAMESPACE_PREFIX = 'wm-'

/** First three octets of host addresses (inside 198.18.0.0/15). */
const SUBNET = '198.18.0'

/** Hosts per network (a /24 minus network and broadcast addresses). */
export const MAX_HOSTS = 254

/** Name of the veth end inside every host namespace. */
const HOST_IFNAME = 'wm0'

/** nftables table holding the loss rule in every host namespace. */
const NFT_TABLE = 'wm_loss'

function run (file: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err !== null) {
        reject(new Error(`${file} ${args.join(' ')} failed: ${stderr.trim() || err.message}`, { cause: err }))
      } else resolve(stdout)
    })
    if (input !== undefined) child.stdin?.end(input)
  })
}

let support: Promise<string | undefined> | undefined

/**
 * Resolves to `undefined` when namespaces with nftables loss can be created
 * here, else to a sentence saying what is missing. Probes once by creating
 * and deleting a namespace and listing its ruleset; the answer is cached.
 */
export function checkNetnsSupport (): Promise<string | undefined> {
  support ??= (async () => {
    if (process.platform !== 'linux') return 'network namespaces need Linux'
    if (process.getuid?.() !== 0) return 'network namespaces need root (run the bench as root)'
    try { await run('ip', ['-V']) } catch { return '`ip` (iproute2) not found on PATH; install it with `apt-get install iproute2`' }
    try { await run('nft', ['--version']) } catch { return '`nft` not found on PATH; install it with `apt-get install nftables`' }
    const probe = `${NAMESPACE_PREFIX}probe-${process.pid}-${randomBytes(3).toString('hex')}`
    try {
      await run('ip', ['netns', 'add', probe])
    } catch (err) {
      return `cannot create a network namespace: ${(err as Error).message}`
    }
    try {
      await run('ip', ['netns', 'exec', probe, 'nft', 'list', 'ruleset'])
      return undefined
    } catch (err) {
      return `nftables does not work inside a namespace: ${(err as Error).message}`
    } finally {
      await run('ip', ['netns', 'del', probe]).catch(() => {})
    }
  })()
  return support
}

/** Options of {@link NetnsNetwork.create}. */
export interface NetnsOptions {
  /** Integer percentage (0–100) of packets dropped on every host's input. Default 0. */
  readonly lossPercent?: number
}

/** One host namespace. */
export interface NetnsHost extends Host {
  /** Namespace name (`wm-<pid>-<random>-<n>`). */
  readonly namespace: string
}

/** A bridge of namespaces with kernel packet loss. See the module comment. */
export class NetnsNetwork implements Network {
  readonly name: string
  readonly lossPercent: number
  readonly #base: string
  readonly #switch: string
  readonly #hosts: NetnsHost[] = []
  readonly #created: string[] = []
  readonly #exitHook: () => void
  #closed = false
  #nextIndex = 1

  private constructor (lossPercent: number) {
    this.lossPercent = lossPercent
    this.name = lossPercent === 0 ? 'netns' : `netns loss ${lossPercent}%`
    this.#base = `${NAMESPACE_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`
    this.#switch = `${this.#base}-sw`
    this.#exitHook = addExitHook(() => { this.#deleteSync() })
  }

  /**
   * Create the switch namespace and its bridge. Rejects (after removing
   * anything it created) when namespaces are unsupported; call
   * {@link checkNetnsSupport} first for a reason to skip.
   */
  static async create (options: NetnsOptions = {}): Promise<NetnsNetwork> {
    const loss = options.lossPercent ?? 0
    if (!Number.isInteger(loss) || loss < 0 || loss > 100) {
      throw new RangeError(`lossPercent must be an integer from 0 to 100, got ${loss}`)
    }
    const net = new NetnsNetwork(loss)
    try {
      await net.#addNamespace(net.#switch)
      await run('ip', ['-n', net.#switch, '-batch', '-'], 'link add br0 type bridge\nlink set br0 up\n')
    } catch (err) {
      await net.close()
      throw err
    }
    return net
  }

  /** Names of the namespaces that currently exist because of this network. */
  get namespaces (): readonly string[] {
    return [...this.#created]
  }

  /** The hosts added so far. */
  get hosts (): readonly NetnsHost[] {
    return this.#hosts
  }

  async #addNamespace (name: string): Promise<void> {
    if (this.#closed) throw new Error('network closed')
    await run('ip', ['netns', 'add', name])
    this.#created.push(name)
  }

  /** Add a host namespace, wired to the bridge, with the loss rule installed. Safe to call concurrently. */
  async addHost (label: string): Promise<NetnsHost> {
    const n = this.#nextIndex++
    if (n > MAX_HOSTS) throw new RangeError(`a network holds at most ${MAX_HOSTS} hosts`)
    const ns = `${this.#base}-${n}`
    const address = `${SUBNET}.${n}`
    const peer = `p${n}`
    await this.#addNamespace(ns)
    await run('ip', ['-n', ns, '-batch', '-'], [
      'link set lo up',
      `link add ${HOST_IFNAME} type veth peer name ${peer} netns ${this.#switch}`,
      `addr add ${address}/24 dev ${HOST_IFNAME}`,
      `link set ${HOST_IFNAME} up`,
      '',
    ].join('\n'))
    await run('ip', ['-n', this.#switch, 'link', 'set', peer, 'master', 'br0', 'up'])
    if (this.lossPercent > 0) {
      await run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], [
        `table inet ${NFT_TABLE} {`,
        '  chain input {',
        '    type filter hook input priority filter; policy accept;',
        `    iifname "${HOST_IFNAME}" numgen random mod 100 < ${this.lossPercent} counter drop`,
        '  }',
        '}',
        '',
      ].join('\n'))
    }
    const port = 17000 + n
    const host: NetnsHost = {
      address,
      label: `${label}@${ns}`,
      namespace: ns,
      command: (file, args) => ({ file: 'ip', args: ['netns', 'exec', ns, file, ...args] }),
      // A fresh namespace holds one process of ours: any port is free in it.
      freePort: async () => port,
    }
    this.#hosts.push(host)
    return host
  }

  /** Packets the loss rule has dropped on `host` so far (nft counter). */
  async droppedPackets (host: NetnsHost): Promise<number> {
    if (this.lossPercent === 0) return 0
    const out = await run('ip', ['netns', 'exec', host.namespace, 'nft', 'list', 'table', 'inet', NFT_TABLE])
    const m = /counter packets (\d+)/.exec(out)
    return m === null ? 0 : Number(m[1])
  }

  /** Delete every namespace this network created (which deletes the veths). Idempotent. */
  async close (): Promise<void> {
    this.#closed = true
    const names = this.#created.splice(0).reverse()
    const failures: string[] = []
    for (const name of names) {
      try { await run('ip', ['netns', 'del', name]) } catch (err) { failures.push((err as Error).message) }
    }
    removeExitHook(this.#exitHook)
    if (failures.length > 0) throw new Error(`could not delete namespaces: ${failures.join('; ')}`)
  }

  #deleteSync (): void {
    this.#closed = true
    for (const name of this.#created.splice(0).reverse()) {
      try { execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore', timeout: 5000 }) } catch { /* best effort */ }
    }
  }
}

/** Every namespace (from any process) whose name starts with {@link NAMESPACE_PREFIX}. */
export async function listOurNamespaces (): Promise<string[]> {
  const out = await run('ip', ['netns', 'list'])
  return out.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(NAMESPACE_PREFIX))
}

/** Options of {@link measureDropRate}. */
export interface DropRateOptions {
  /** Datagrams to send. Default 4000. */
  readonly datagrams?: number
  /** Datagrams per 1 ms tick, low enough that the receiver never overflows. Default 20. */
  readonly perTick?: number
}

/** Result of {@link measureDropRate}. */
export interface DropRate {
  readonly sent: number
  /** Distinct datagrams that arrived. */
  readonly received: number
  /** `1 − received / sent`. */
  readonly lossRate: number
  /** What the receiver's nft counter says it dropped meanwhile. */
  readonly nftDropped: number
}

const RECEIVER_SCRIPT = `
const dgram = require('node:dgram')
const [addr, count] = [process.argv[1], Number(process.argv[2])]
const seen = new Uint8Array(count)
let received = 0
const s = dgram.createSocket('udp4')
s.on('message', (m) => {
  if (m.length !== 64) return
  const i = m.readUInt32LE(0)
  if (i < count && seen[i] === 0) { seen[i] = 1; received++ }
})
s.bind(0, addr, () => {
  s.setRecvBufferSize(4 << 20)
  process.stdout.write('port ' + s.address().port + '\\n')
})
process.stdin.on('end', () => { process.stdout.write('received ' + received + '\\n', () => process.exit(0)) })
process.stdin.resume()
`

const SENDER_SCRIPT = `
const dgram = require('node:dgram')
const [src, dst, port, count, perTick] = [process.argv[1], process.argv[2], Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5])]
const s = dgram.createSocket('udp4')
let i = 0
const tick = () => {
  for (let k = 0; k < perTick && i < count; k++, i++) {
    const b = Buffer.alloc(64)
    b.writeUInt32LE(i, 0)
    s.send(b, port, dst)
  }
  if (i < count) setTimeout(tick, 1)
  else setTimeout(() => process.exit(0), 50)
}
s.bind(0, src, tick)
`

/** Waits for lines of a child's stdout that start with a prefix (one reader per stream). */
class LineWaiter {
  readonly #lines: string[] = []
  readonly #waiters = new Set<() => void>()

  constructor (child: ChildProcess) {
    const rl = createInterface({ input: child.stdout! })
    rl.on('line', (line) => {
      this.#lines.push(line)
      for (const w of [...this.#waiters]) w()
    })
    rl.on('close', () => { for (const w of [...this.#waiters]) w() })
  }

  /** The rest of the first line starting with `prefix`; rejects after `timeoutMs`. */
  next (prefix: string, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const i = this.#lines.findIndex((l) => l.startsWith(prefix))
        if (i < 0) return
        const line = this.#lines.splice(i, 1)[0]!
        clearTimeout(timer)
        this.#waiters.delete(check)
        resolve(line.slice(prefix.length))
      }
      const timer = setTimeout(() => {
        this.#waiters.delete(check)
        reject(new Error(`no "${prefix.trim()}" line within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#waiters.add(check)
      check()
    })
  }
}

/**
 * Measure the one-way datagram loss between two hosts with plain
 * `node:dgram` (no reliability): a receiver on `to` counts distinct
 * datagrams from a paced sender on `from`. With a loss rule of N % the
 * result should be close to N % (the rule runs once, on the receiver).
 */
export async function measureDropRate (network: NetnsNetwork, from: NetnsHost, to: NetnsHost, options: DropRateOptions = {}): Promise<DropRate> {
  const count = options.datagrams ?? 4000
  const perTick = options.perTick ?? 20
  const droppedBefore = await network.droppedPackets(to)
  const rc = to.command(process.execPath, ['-e', RECEIVER_SCRIPT, to.address, String(count)])
  const receiver = spawn(rc.file, rc.args, { stdio: ['pipe', 'pipe', 'inherit'] })
  trackProcess(receiver)
  let sender: ChildProcess | undefined
  try {
    const lines = new LineWaiter(receiver)
    const port = await lines.next('port ', 10_000)
    const sc = from.command(process.execPath, ['-e', SENDER_SCRIPT, from.address, to.address, port, String(count), String(perTick)])
    sender = spawn(sc.file, sc.args, { stdio: ['ignore', 'ignore', 'inherit'] })
    trackProcess(sender)
    if (!await waitForExit(sender, 30_000)) throw new Error('drop-rate sender did not finish within 30 s')
    await new Promise((resolve) => setTimeout(resolve, 100))
    receiver.stdin!.end()
    const received = Number(await lines.next('received ', 10_000))
    const nftDropped = (await network.droppedPackets(to)) - droppedBefore
    return { sent: count, received, lossRate: 1 - received / count, nftDropped }
  } finally {
    if (sender !== undefined) await stopProcess(sender, 'SIGKILL')
    await stopProcess(receiver, 'SIGKILL')
  }
}

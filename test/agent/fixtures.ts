/**
 * Shared set-up of the agent tests: an in-process coordinator (insecure, on
 * 127.0.0.1), agents on Unix sockets in a private temporary directory, raw
 * protocol connections, and bounded waits.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Coordinator } from '../../lib/mesh/coordinator.js'
import { Agent, type AgentOptions } from '../../lib/agent/agent.js'
import { AgentClient, type AgentClientOptions } from '../../lib/agent/client.js'
import { FrameDecoder } from '../../lib/agent/framing.js'
import {
  AGENT_MAX_FRAME, AGENT_PROTOCOL_VERSION, type DecodedMessage, decodeAgentMessage, encodeClientFrame,
} from '../../lib/agent/protocol.js'

/** Heartbeat of the test meshes, ms (no test waits for a lease to expire; long enough not to flap on a loaded machine). */
export const HB = 500

/** A fresh private directory, removed at teardown. */
export function tempDir(t: { teardown(f: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'wm-agent-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

export async function startCoordinator(t: { teardown(f: () => unknown): void }): Promise<Coordinator> {
  const c = await Coordinator.start({ address: '127.0.0.1', port: 0, insecure: true, heartbeatMs: HB })
  t.teardown(() => c.close())
  return c
}

export function nodeOptions(coordinator: Coordinator): AgentOptions['node'] {
  return {
    coordinators: [{ host: '127.0.0.1', port: coordinator.port }], insecure: true, address: '127.0.0.1',
    heartbeatMs: HB, closeTimeoutMs: 500,
  }
}

/** An agent on `<dir>/<name>.sock`, closed at teardown. */
export async function startAgent(
  t: { teardown(f: () => unknown): void },
  coordinator: Coordinator,
  dir: string,
  extra: Partial<AgentOptions> = {},
  name = 'agent',
): Promise<Agent> {
  const agent = await Agent.start({ socket: join(dir, `${name}.sock`), node: nodeOptions(coordinator), ...extra })
  t.teardown(() => agent.close())
  return agent
}

export async function client(
  t: { teardown(f: () => unknown): void },
  agent: Agent,
  o: Partial<AgentClientOptions> & { id: string },
): Promise<AgentClient> {
  const c = await AgentClient.connect({ socket: agent.socketPath!, ...o })
  t.teardown(() => c.close())
  return c
}

/** Wait until `pred()` holds, polling every 10 ms; throws after `ms`. */
export async function until(pred: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** A raw protocol connection: write any bytes, read decoded AgentMessages. */
export class Raw {
  readonly socket: Socket
  readonly messages: DecodedMessage[] = []
  readonly #decoder = new FrameDecoder(AGENT_MAX_FRAME)
  closed = false

  private constructor(socket: Socket) {
    this.socket = socket
    socket.on('data', (chunk: Buffer) => {
      this.#decoder.push(chunk)
      for (let f = this.#decoder.next(); f !== null; f = this.#decoder.next()) {
        const m = decodeAgentMessage(f)
        if (typeof m !== 'string') this.messages.push({ body: m.body, [m.body ?? '']: m.value })
      }
    })
    socket.on('error', () => {})
    socket.on('close', () => { this.closed = true })
  }

  static async open(t: { teardown(f: () => unknown): void }, target: string | number): Promise<Raw> {
    const socket = typeof target === 'string' ? connect(target) : connect(target, '127.0.0.1')
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    const raw = new Raw(socket)
    t.teardown(() => socket.destroy())
    return raw
  }

  send(message: Record<string, unknown>): void {
    this.socket.write(encodeClientFrame(message))
  }

  hello(id: string, extra: Record<string, unknown> = {}): void {
    this.send({ hello: { protocolVersion: AGENT_PROTOCOL_VERSION, id, ...extra } })
  }

  /** The first message (from index `from`) with body `body`, waiting for it. */
  async next(body: string, from = 0): Promise<DecodedMessage> {
    let found: DecodedMessage | undefined
    await until(() => (found = this.messages.slice(from).find((m) => m.body === body)) !== undefined, `a ${body} message`)
    return found![body] as DecodedMessage
  }

  async waitClosed(): Promise<void> {
    await until(() => this.closed, 'the agent to close the connection')
  }
}

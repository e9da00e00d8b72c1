/**
 * Entry point of every harness node process (a messaging node or a
 * `'node-process'` service). Started by the driver with an IPC channel
 * (`serialization: 'advanced'`); it imports the variant module, creates the
 * node or service, and executes the driver's requests one at a time. The
 * measured traffic flows only over the variant's own sockets.
 *
 * It exits when the driver asks it to close, when the IPC channel goes away
 * (the driver died), or on any uncaught error (reported to the driver first).
 */

import { Agent } from './agent.js'
import type { Task } from './agent.js'
import type { BenchNode, Directory, NodeContext, NodeModule, ServiceContext, ServiceInstance } from './variant.js'

/** Requests from the driver. */
export type ControlRequest =
  | { readonly id: number, readonly op: 'start-node', readonly module: string, readonly ctx: NodeContext }
  | { readonly id: number, readonly op: 'start-service', readonly module: string, readonly ctx: ServiceContext }
  | { readonly id: number, readonly op: 'connect', readonly directory: Directory }
  | { readonly id: number, readonly op: 'task', readonly task: Task }
  | { readonly id: number, readonly op: 'stats' }
  | { readonly id: number, readonly op: 'close' }

/** Replies to the driver; `id` 0 with `fatal` reports an uncaught error. */
export type ControlReply =
  | { readonly id: number, readonly ok: true, readonly value: unknown }
  | { readonly id: number, readonly ok: false, readonly error: string }

let node: BenchNode | undefined
let service: ServiceInstance | undefined
let agent: Agent | undefined

function reply (msg: ControlReply, then?: () => void): void {
  if (process.connected) process.send!(msg, undefined, {}, () => then?.())
  else then?.()
}

function describe (err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err)
}

async function handle (req: ControlRequest): Promise<unknown> {
  switch (req.op) {
    case 'start-node': {
      const mod = await import(req.module) as NodeModule
      node = await mod.createNode(req.ctx)
      agent = new Agent(node)
      return { info: node.info, pid: process.pid }
    }
    case 'start-service': {
      const mod = await import(req.module) as NodeModule
      if (mod.createService === undefined) throw new Error(`${req.module} exports no createService`)
      service = await mod.createService(req.ctx)
      return { info: service.info, pid: process.pid }
    }
    case 'connect':
      if (node === undefined) throw new Error('connect before start-node')
      await node.connect(req.directory)
      return null
    case 'task':
      if (agent === undefined) throw new Error('task before start-node')
      return await agent.run(req.task)
    case 'stats':
      return node?.stats() ?? service?.stats() ?? {}
    case 'close':
      await Promise.race([
        Promise.all([node?.close(), service?.close()]),
        new Promise((resolve) => setTimeout(resolve, 2000).unref()),
      ])
      return null
  }
}

process.on('message', (req: ControlRequest) => {
  handle(req).then(
    (value) => {
      reply({ id: req.id, ok: true, value }, req.op === 'close' ? () => process.exit(0) : undefined)
    },
    (err: unknown) => { reply({ id: req.id, ok: false, error: describe(err) }) },
  )
})

process.on('disconnect', () => { process.exit(0) })

process.on('uncaughtException', (err) => {
  reply({ id: 0, ok: false, error: `uncaught in node process ${process.pid}: ${describe(err)}` }, () => process.exit(1))
  setTimeout(() => process.exit(1), 1000).unref()
})

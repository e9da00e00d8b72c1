/**
 * Where the processes of a bench cluster run. {@link loopback} puts them all
 * on 127.0.0.1; `NetnsNetwork` (netns.ts) gives each its own network
 * namespace joined by veth with kernel packet loss.
 */

import { createServer } from 'node:net'

/** One place a process can run. */
export interface Host {
  /** The IP address processes on this host bind to. */
  readonly address: string
  /** Human-readable label (namespace name or `loopback`). */
  readonly label: string
  /**
   * The command line that runs `file args` on this host; the returned
   * command must `exec` into `file` so the PID of the spawned process is
   * the PID of `file` (`ip netns exec` does).
   */
  command(file: string, args: readonly string[]): { readonly file: string, readonly args: readonly string[] }
  /**
   * A TCP port free on this host right now. Best effort (another process may
   * take it before the caller binds): callers retry on EADDRINUSE.
   */
  freePort(): Promise<number>
}

/** A set of hosts processes can be placed on. */
export interface Network {
  /** Short description for reports: `loopback`, `netns loss 5%`. */
  readonly name: string
  /** Packet loss percentage applied on every host's input (0 on loopback). */
  readonly lossPercent: number
  /** A host for one more process. */
  addHost(label: string): Promise<Host>
  /** Remove everything the network created. Idempotent. */
  close(): Promise<void>
}

/** Bind a TCP server to port 0 on `address`, read the port, close it. */
export function findFreePort (address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, address, () => {
      const addr = server.address()
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0
      server.close(() => { resolve(port) })
    })
  })
}

const loopbackHost: Host = {
  address: '127.0.0.1',
  label: 'loopback',
  command: (file, args) => ({ file, args }),
  freePort: () => findFreePort('127.0.0.1'),
}

/** Every process on 127.0.0.1, no added loss. */
export const loopback: Network = {
  name: 'loopback',
  lossPercent: 0,
  addHost: async () => loopbackHost,
  close: async () => {},
}

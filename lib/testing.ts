/**
 * Test-only hooks: the simulated network, the fake clock and the fault
 * injection wrapper. Not part of the public API (not exported by index.ts).
 */
export { SimNetwork, SimTransport, FakeClock, createRng } from './transport/sim.js'
export type { LinkConditions, SimNetworkOptions } from './transport/sim.js'
export { wrapFaulty, FaultyTransport } from './transport/faulty.js'
export type { FaultyOptions } from './transport/faulty.js'
export { envelopesEncoded } from './mesh/envelope.js'

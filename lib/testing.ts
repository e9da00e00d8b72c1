/**
 * Test-only hooks: the simulated network, the fake clock, the fault
 * injection wrapper and the seam that loads libsodium. Not part of the public API (not exported by index.ts).
 */
export { SimNetwork, SimTransport, FakeClock, createRng } from './transport/sim.js'
export type { LinkConditions, SimNetworkOptions } from './transport/sim.js'
export { wrapFaulty, FaultyTransport } from './transport/faulty.js'
export type { FaultyOptions } from './transport/faulty.js'
export { envelopesEncoded } from './mesh/envelope.js'
export { setSodiumLoader } from './security/sodium.js'
export type { SodiumLoader } from './security/sodium.js'

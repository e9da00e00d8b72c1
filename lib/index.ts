/**
 * warpmesh public API. Everything a user imports comes from here.
 */
export { Endpoint, Session, formatAddress } from './endpoint.js'
export type { EndpointOptions, EndpointStats, SendOptions, SessionStats } from './endpoint.js'
export type { ConnectionOptions, UndeliveredMessage } from './core/connection.js'
export type { RttOptions } from './core/rtt.js'
export { Delivery, CloseReason } from './wire/codec.js'
export { bindUdp, UdpTransport } from './transport/udp.js'
export type { UdpOptions } from './transport/udp.js'
export type { Transport, Clock, DatagramHandler } from './transport/transport.js'
export { systemClock } from './transport/transport.js'
export * from './errors.js'
export { createLogger, silentLogger } from './log.js'
export type { Logger, LogLevel } from './log.js'
export { generateKey, loadKeys, parseKeys } from './security/keys.js'
export {
  nodeOptionsFromEnv, coordinatorOptionsFromEnv, ENV_VARS, formatEnvTable, formatEnvHelp,
} from './config.js'
export type { NodeEnvConfig, CoordinatorEnvConfig } from './config.js'
export { MeshNode, OUTBOX_LIMIT, OUTBOX_HIGH_WATER } from './mesh/node.js'
export type { MeshNodeOptions, MeshMessage, MeshSendOptions, MeshTotals } from './mesh/node.js'
export { Coordinator } from './mesh/coordinator.js'
export type { CoordinatorOptions, CoordinatorStats } from './mesh/coordinator.js'
export { meshEndpointOptions, CONTROL_CHANNEL, MESH_CHANNELS, APP_CHANNELS } from './mesh/control.js'
export type { PeerInfo } from './mesh/control.js'
export { startMetricsServer } from './metrics.js'
export type { MetricsSnapshot } from './metrics.js'

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
export type { NodeEnvConfig, MeshEnvConfig, CoordinatorEnvConfig } from './config.js'
export { MeshNode, OUTBOX_LIMIT, OUTBOX_HIGH_WATER } from './mesh/node.js'
export type { MeshNodeOptions, MeshMessage, MeshSendOptions, MeshTotals } from './mesh/node.js'
export { Coordinator } from './mesh/coordinator.js'
export type { CoordinatorOptions, CoordinatorStats } from './mesh/coordinator.js'
export { meshEndpointOptions, CONTROL_CHANNEL, MESH_CHANNELS, APP_CHANNELS } from './mesh/control.js'
export type { PeerInfo } from './mesh/control.js'
export { warmUp, MAX_WARMUP_ROUND_TRIPS } from './warmup.js'
export type { WarmupOptions, WarmupResult } from './warmup.js'
export { startMetricsServer } from './metrics.js'
export type { MetricsSnapshot } from './metrics.js'
export { Agent, DEFAULT_MAX_CLIENTS, DEFAULT_MAX_PENDING_REQUESTS, DEFAULT_MAX_INCOMING_REQUESTS, DEFAULT_INCOMING_TIMEOUT_MS, DEFAULT_HELLO_TIMEOUT_MS } from './agent/agent.js'
export type { AgentOptions, AgentStats } from './agent/agent.js'
export type { ClientNodeOptions } from './agent/session.js'
export { AgentClient, AgentError, RECONNECT_MIN_MS, RECONNECT_MAX_MS } from './agent/client.js'
export type {
  AgentClientOptions, AgentSendOptions, AgentPeer, AgentMessageEvent, AgentRequestEvent, AgentNodeStats,
  AgentServiceHandlers, AgentPlayerList, AgentServiceOptions,
} from './agent/client.js'
export { AGENT_MAX_FRAME, AGENT_PROTOCOL_VERSION, DEFAULT_AGENT_SOCKET, DEFAULT_CLIENT_BUFFER, AgentErrorCode } from './agent/protocol.js'
export { agentOptionsFromEnv } from './config.js'
export type { AgentEnvConfig } from './config.js'
export { Network } from './services/network.js'
export { SERVICES_TOPIC, SERVICES_CHANNEL, ServerState, CLOSED_STATES } from './services/types.js'
export type {
  PlayerInfo, PlayerAnnouncement, ServerInfo, ServerSettings, ServerSelector, PlayerFilter, ServerFilter,
  TransferResult, DeliveryResult, TransferHook, MoveHandler, PlayerMessageHandler, KickHandler, NetworkOptions, NetworkStats,
} from './services/types.js'

/**
 * The start-up error when libsodium (sodium-native) cannot be loaded,
 * injected through the loader seam (lib/testing.ts), never by breaking
 * node_modules.
 */
import t from 'tap'
import { Endpoint } from '../../lib/endpoint.js'
import { ErrorCode, isWarpmeshError, NativeModuleError } from '../../lib/errors.js'
import { PacketProtector } from '../../lib/security/aead.js'
import { loadSodium } from '../../lib/security/sodium.js'
import { setSodiumLoader, SimNetwork } from '../../lib/testing.js'

const KEY = Buffer.alloc(32, 9)
const notFound = (): never => {
  throw Object.assign(new Error('Cannot find module \'sodium-native\''), { code: 'MODULE_NOT_FOUND' })
}

t.afterEach(() => { setSodiumLoader(null) })

t.test('a keyed endpoint cannot be created without the native module: named error, stable code, what failed and how to fix it', async (t) => {
  const net = new SimNetwork()
  setSodiumLoader(notFound)
  let caught: unknown
  try {
    new Endpoint(net.bind('10.0.0.1', 1000), { keys: [KEY] })
  } catch (err) {
    caught = err
  }
  t.ok(caught instanceof NativeModuleError, 'NativeModuleError')
  t.ok(isWarpmeshError(caught, ErrorCode.NativeModule))
  const err = caught as NativeModuleError
  t.equal(err.code, 'ERR_WARPMESH_NATIVE_MODULE')
  t.equal(err.module, 'sodium-native')
  t.match(err.message, /^cannot load the native module sodium-native \(Cannot find module 'sodium-native'\)/, 'says what failed')
  t.match(err.message, /npm ci/, 'says how to fix it')
  t.equal((err.cause as { code?: string }).code, 'MODULE_NOT_FOUND', 'the loader\'s error is the cause')
  t.throws(() => new PacketProtector(KEY, KEY), NativeModuleError, 'PacketProtector too')
})

t.test('an insecure endpoint does not need it', async (t) => {
  const net = new SimNetwork()
  let calls = 0
  setSodiumLoader(() => { calls++; return notFound() })
  const e = new Endpoint(net.bind('10.0.0.1', 1000), { insecure: true })
  t.equal(e.secure, false)
  t.equal(calls, 0, 'never loaded')
  await e.close()
})

t.test('a module without the functions warpmesh calls (incompatible version) fails at start-up too', async (t) => {
  setSodiumLoader(() => ({ crypto_aead_chacha20poly1305_ietf_encrypt: () => 0 }))
  t.throws(() => loadSodium(), {
    code: 'ERR_WARPMESH_NATIVE_MODULE',
    message: /\(it lacks crypto_aead_chacha20poly1305_ietf_decrypt, sodium_memzero \(an incompatible version\?\)\)/,
  })
  setSodiumLoader(() => null)
  t.throws(() => loadSodium(), /it lacks crypto_aead_chacha20poly1305_ietf_encrypt, crypto_aead_chacha20poly1305_ietf_decrypt/)
  setSodiumLoader(() => { throw 'a string' }) // eslint-disable-line no-throw-literal
  t.throws(() => loadSodium(), /\(a string\)/, 'whatever the loader throws is named')
})

t.test('Endpoint.create rejects with it and frees the socket; the real loader works again after the seam is reset', async (t) => {
  setSodiumLoader(notFound)
  await t.rejects(Endpoint.create({ address: '127.0.0.1', port: 0, keys: [KEY] }), { code: 'ERR_WARPMESH_NATIVE_MODULE' })
  setSodiumLoader(null)
  const e = await Endpoint.create({ address: '127.0.0.1', port: 0, keys: [KEY] })
  t.equal(e.secure, true)
  await e.close()
  t.equal(loadSodium(), loadSodium(), 'loaded once')
})

/**
 * libsodium, through the npm package `sodium-native` (its prebuilt binary
 * ships inside the package, so `npm ci` installs it; no compiler needed).
 *
 * Loaded on first use rather than imported, so that a missing or broken
 * native module is reported as a {@link NativeModuleError} naming what failed
 * and how to fix it, when a keyed endpoint is created — not as a bare
 * `ERR_DLOPEN_FAILED` thrown while importing warpmesh (an insecure endpoint
 * never needs it).
 *
 * @module
 */
import { createRequire } from 'node:module'
import { NativeModuleError } from '../errors.js'

/** The package warpmesh loads its AEAD from. */
export const SODIUM_PACKAGE = 'sodium-native'

/**
 * The few `sodium-native` functions warpmesh calls (its own signatures, see
 * the package's README). Both throw on misuse (wrong buffer sizes); `decrypt`
 * also throws when the ciphertext does not authenticate.
 */
export interface Sodium {
  /** Combined mode: `c` = ciphertext ‖ 16-byte tag, `c.length === m.length + 16`; `c` may be `m`'s memory (same start). */
  crypto_aead_chacha20poly1305_ietf_encrypt(c: Uint8Array, m: Uint8Array, ad: Uint8Array | null, nsec: null, npub: Uint8Array, k: Uint8Array): number
  /** Combined mode: `m.length === c.length - 16`; `m` may be `c`'s memory (same start). Throws when `c` does not authenticate. */
  crypto_aead_chacha20poly1305_ietf_decrypt(m: Uint8Array, nsec: null, c: Uint8Array, ad: Uint8Array | null, npub: Uint8Array, k: Uint8Array): number
  /** Overwrite `buf` with zeros (not optimised away). */
  sodium_memzero(buf: Uint8Array): void
}

/** The functions {@link loadSodium} checks for, so that an incompatible version fails at start-up, not per packet. */
const REQUIRED = [
  'crypto_aead_chacha20poly1305_ietf_encrypt', 'crypto_aead_chacha20poly1305_ietf_decrypt', 'sodium_memzero',
] as const

const requireModule = createRequire(import.meta.url)

/** How the module is obtained; replaced only by tests ({@link setSodiumLoader}). */
export type SodiumLoader = () => unknown

const defaultLoader: SodiumLoader = () => requireModule(SODIUM_PACKAGE)

let loader: SodiumLoader = defaultLoader
let loaded: Sodium | null = null

/**
 * The loaded module, loading it on the first call.
 *
 * @throws {NativeModuleError} when `sodium-native` cannot be loaded (not
 *   installed, no prebuilt binary for this platform, a binary that does not
 *   load) or lacks a function warpmesh needs. The next call tries again.
 */
export function loadSodium(): Sodium {
  if (loaded !== null) return loaded
  let mod: unknown
  try {
    mod = loader()
  } catch (err) {
    throw new NativeModuleError(SODIUM_PACKAGE, err instanceof Error ? err.message : String(err), { cause: err })
  }
  const missing = REQUIRED.filter((name) => typeof (mod as Record<string, unknown> | null)?.[name] !== 'function')
  if (missing.length > 0) {
    throw new NativeModuleError(SODIUM_PACKAGE, `it lacks ${missing.join(', ')} (an incompatible version?)`)
  }
  loaded = mod as Sodium
  return loaded
}

/**
 * @internal Test seam (re-exported by `lib/testing.ts` only): replace how
 * `sodium-native` is loaded, e.g. with a function that throws, to test the
 * start-up error; `null` restores the real loader. Forgets the loaded module
 * either way.
 */
export function setSodiumLoader(fn: SodiumLoader | null): void {
  loader = fn ?? defaultLoader
  loaded = null
}

/**
 * Every comparison variant, in report order. A variant is a
 * module exporting `variant` plus `createNode` (and `createService` if it
 * has node-process services); add its `variant` here. See
 * ../harness/variant.ts for the contract.
 */

import type { Variant } from '../harness/variant.js'
import { variant as rawDgram } from './raw-dgram.js'
import { variant as redis } from './redis.js'
import { variant as sealedDgram } from './sealed-dgram.js'
import { variant as tcpHub } from './tcp-hub.js'
import { variant as tcpStar } from './tcp-star.js'
import { variant as warpmesh } from './warpmesh.js'

/** The variants, floors first. */
export const variants: readonly Variant[] = [rawDgram, sealedDgram, tcpStar, tcpHub, redis, warpmesh]

/** The variant called `name`, or `undefined`. */
export function findVariant (name: string): Variant | undefined {
  return variants.find((v) => v.name === name)
}

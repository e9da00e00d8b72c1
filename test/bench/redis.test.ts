import { variant } from '../../bench/variants/redis.js'
import { variantSuite } from './fixtures/variant-suite.js'

await variantSuite(variant)

import { variant } from '../../bench/variants/tcp-hub.js'
import { variantSuite } from './fixtures/variant-suite.js'

await variantSuite(variant)

import { variant } from '../../bench/variants/tcp-star.js'
import { variantSuite } from './fixtures/variant-suite.js'

await variantSuite(variant)

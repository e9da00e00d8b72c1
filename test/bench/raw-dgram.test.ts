import { variant } from '../../bench/variants/raw-dgram.js'
import { variantSuite } from './fixtures/variant-suite.js'

await variantSuite(variant)

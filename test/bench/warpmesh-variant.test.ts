import { variant } from '../../bench/variants/warpmesh.js'
import { variantSuite } from './fixtures/variant-suite.js'

await variantSuite(variant)

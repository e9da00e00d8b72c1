// The documentation's pointers hold: every `npm run <script>` that README.md,
// docs/ and bench/*.md tell a reader to run is a script of package.json, and
// every relative link in README.md and docs/ names a file that exists.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }

function markdown (dir: string): string[] {
  return readdirSync(join(root, dir)).filter((f) => f.endsWith('.md')).map((f) => join(dir, f))
}

const linked = ['README.md', ...markdown('docs')]
const documents = [...linked, ...markdown('bench')]

t.test('every npm script the documents name exists', async (t) => {
  let named = 0
  for (const file of documents) {
    const text = readFileSync(join(root, file), 'utf8')
    for (const m of text.matchAll(/npm run ([a-z][a-z0-9:-]*)/g)) {
      named++
      if (!(m[1]! in pkg.scripts)) t.fail(`${file}: "npm run ${m[1]}" is not a script of package.json`)
    }
  }
  t.ok(named >= 20, `${named} mentions checked`)
})

t.test('every relative link in README.md and docs/ names a file that exists', async (t) => {
  let links = 0
  for (const file of linked) {
    const text = readFileSync(join(root, file), 'utf8')
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1]!.split('#')[0]!
      if (target === '' || /^[a-z]+:/.test(target)) continue
      links++
      const path = resolve(root, dirname(file), target)
      t.ok(existsSync(path), `${file} → ${m[1]}`)
    }
  }
  t.ok(links >= 10, `${links} links checked`)
})

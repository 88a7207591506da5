'use strict';
// `npm test` runs this first: builds the addon (release) when the binary is
// missing or older than any source it is built from.

const fs = require('node:fs');
const path = require('node:path');
const { execSync } = require('node:child_process');

const root = path.join(__dirname, '..');
const binaries = fs.readdirSync(root).filter((f) => f.endsWith('.node'));

function newest(dir) {
  let t = 0;
  for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : fs.statSync(path.join(root, p)).mtimeMs);
  }
  return t;
}

const sourceTime = Math.max(newest('src'), newest('c'), ...['Cargo.toml', 'build.rs'].map((f) => fs.statSync(path.join(root, f)).mtimeMs));
const binaryTime = binaries.length && fs.existsSync(path.join(root, 'binding.js'))
  ? Math.min(...binaries.map((f) => fs.statSync(path.join(root, f)).mtimeMs))
  : 0;

if (binaryTime < sourceTime) {
  console.log('Building the native addon (release)...');
  execSync('npm run build', { cwd: root, stdio: 'inherit' });
}

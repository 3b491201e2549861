// The Node quick start (bindings-node/examples/quickstart.mjs) runs as the README says, importing
// '@vibetrees/native' by name (a package may import itself by its own name), and README.md shows
// it verbatim.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { coreVersion } from '@vibetrees/native';
import { tempDir } from './helpers.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const example = path.join(root, 'bindings-node/examples/quickstart.mjs');

test('README.md shows bindings-node/examples/quickstart.mjs verbatim', () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const start = readme.indexOf('<!-- quickstart:node begin -->');
  const end = readme.indexOf('<!-- quickstart:node end -->');
  assert.ok(start >= 0 && end > start, 'the quickstart:node markers are in README.md');
  const block = readme.slice(start, end);
  const code = block.slice(block.indexOf('```js\n') + '```js\n'.length, block.lastIndexOf('```'));
  assert.equal(code, fs.readFileSync(example, 'utf8'), 'keep README.md and the example identical');
});

test('the quick start runs scan -> { lint, test } -> package and reports NOT_FOUND and metrics', () => {
  // Run from an unrelated folder, as `node bindings-node/examples/quickstart.mjs` from anywhere.
  const stdout = execFileSync(process.execPath, [example], {
    cwd: tempDir('vt-node-quickstart-'),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = stdout.split('\n');
  assert.equal(lines[0], `@vibetrees/native ${coreVersion()}`);

  const got = (task) => {
    const i = lines.findIndex((l) => l.trimStart().startsWith(`${task} `) && l.includes(' got '));
    assert.ok(i > 0, `task ${task} printed its inputs:\n${stdout}`);
    return i;
  };
  assert.match(lines[got('scan')], / got \{\}$/);
  assert.ok(lines[got('lint')].endsWith(' got {"scan":"scan: ok"}'));
  assert.ok(lines[got('test')].endsWith(' got {"scan":"scan: ok"}'));
  assert.ok(lines[got('package')].endsWith(' got {"lint":"lint: ok","test":"test: ok"}'));
  assert.ok(got('scan') < got('lint') && got('scan') < got('test'));
  assert.ok(got('lint') < got('package') && got('test') < got('package'));

  const results = lines.find((l) => l.startsWith('results: '));
  assert.ok(results, `a results line:\n${stdout}`);
  assert.deepEqual(JSON.parse(results.slice('results: '.length)), {
    scan: 'scan: ok',
    lint: 'lint: ok',
    test: 'test: ok',
    package: 'package: ok',
  });

  assert.ok(
    lines.includes("ending op-404 (expected) failed [NOT_FOUND]: not found: unknown operation id 'op-404'"),
    `a NOT_FOUND line naming op-404:\n${stdout}`,
  );

  const metricsLine = lines.find((l) => l.startsWith('metrics: '));
  assert.ok(metricsLine, `a metrics line:\n${stdout}`);
  const metrics = JSON.parse(metricsLine.slice('metrics: '.length));
  assert.deepEqual(metrics.operations.map((op) => op.name).sort(), ['lint', 'package', 'scan', 'test']);
  for (const op of metrics.operations) assert.equal(op.count, 1, `each task ran once: ${JSON.stringify(op)}`);
  assert.ok(metrics.totalTime > 0);
});

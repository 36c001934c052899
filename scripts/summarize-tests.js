// Prints, over all Jest runs of `npm test`, the slowest test files (so a CI log says where the
// time went) and one closing line: "tests: N passed, N failed, N skipped".
const fs = require('node:fs');
const path = require('node:path');

const files = [];
// Failed tests with the start of their message, printed last, so the tail of a CI log names them.
const failures = [];

let passed = 0;
let failed = 0;
let skipped = 0;
let missing = 0;
for (const file of process.argv.slice(2)) {
  let report;
  try {
    report = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    missing += 1;
    continue;
  }
  for (const r of report.testResults ?? []) {
    const rel = path.relative(process.cwd(), r.name);
    for (const a of r.assertionResults ?? []) {
      if (a.status === 'failed')
        failures.push({
          name: `${rel}: ${a.fullName}`,
          message: (a.failureMessages ?? []).join('\n'),
        });
    }
    if (
      r.status === 'failed' &&
      !(r.assertionResults ?? []).some(a => a.status === 'failed')
    )
      failures.push({
        name: `${rel} (the file failed to run)`,
        message: r.message ?? '',
      });
    const ms = (r.endTime ?? 0) - (r.startTime ?? 0);
    if (ms > 0)
      files.push({
        name: path.relative(process.cwd(), r.name),
        ms,
        status: r.status,
      });
  }
  passed += report.numPassedTests;
  failed += report.numFailedTests + report.numRuntimeErrorTestSuites;
  skipped += report.numPendingTests + report.numTodoTests;
}
files.sort((a, b) => b.ms - a.ms);
if (files.length) {
  console.log('slowest test files:');
  for (const f of files.slice(0, 15)) {
    console.log(
      `  ${(f.ms / 1000).toFixed(1).padStart(7)} s  ${f.status === 'failed' ? 'FAIL ' : ''}${f.name}`,
    );
  }
}
for (const f of failures) {
  console.log(`FAILED ${f.name}`);
  // Colour codes out; the first lines say what was expected and what came.
  const lines = f.message
    .replace(/\u001b\[[0-9;]*m/g, '')
    .split('\n')
    .slice(0, 12);
  for (const line of lines) console.log(`    ${line}`);
}
if (missing)
  console.log(
    `${missing} test run(s) produced no report (they failed to start)`,
  );
console.log(
  `tests: ${passed} passed, ${failed + missing} failed, ${skipped} skipped`,
);

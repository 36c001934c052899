// Prints, over all Jest runs of `npm test`, the slowest test files (so a CI log says where the
// time went) and one closing line: "tests: N passed, N failed, N skipped".
const fs = require('node:fs');
const path = require('node:path');

const files = [];

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
if (missing)
  console.log(
    `${missing} test run(s) produced no report (they failed to start)`,
  );
console.log(
  `tests: ${passed} passed, ${failed + missing} failed, ${skipped} skipped`,
);

// Prints one closing line over all Jest runs of `npm test`: "tests: N passed, N failed, N skipped".
const fs = require('node:fs');

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
  passed += report.numPassedTests;
  failed += report.numFailedTests + report.numRuntimeErrorTestSuites;
  skipped += report.numPendingTests + report.numTodoTests;
}
if (missing) console.log(`${missing} test run(s) produced no report (they failed to start)`);
console.log(`tests: ${passed} passed, ${failed + missing} failed, ${skipped} skipped`);

// What classroom-resources/autograding-grading-reporter@v1 (its bundled dist/main.js)
// does with the grading steps' results, re-implemented for the tests (not its code):
//   node classroom_reporter.js RUNNERS   with <RUNNER>_RESULTS in the environment
// For each runner it base64-decodes <RUNNER upper-cased>_RESULTS and JSON-parses it (an
// empty value throws "Unexpected end of JSON input" and nothing is posted); prints a line
// per test ("✅ name", "❌ name", or for status error only "Error: <message>"); its
// "Total points for <runner>" counts passed tests (passed / tests * max_score); and posts
// "Points X/Y" with X the plain JavaScript sum of tests[].score over runners whose
// max_score is not 0. Exit status 1 when any runner's status is fail or error.
"use strict";

function main(runnersInput) {
  const runners = runnersInput.split(",").map((runner) => {
    const encoded = process.env[`${runner.trim().toUpperCase()}_RESULTS`];
    const json = Buffer.from(encoded, "base64").toString("utf-8");
    return { runner, results: JSON.parse(json) };
  });
  for (const { runner, results } of runners) {
    console.log(`Processing: ${runner}`);
    let passed = 0;
    for (const test of results.tests) {
      if (test.status === "pass") {
        passed += 1;
        console.log(`PASS ${test.name}`);
      } else if (test.status === "error") {
        console.log(`Error: ${test.message || `Failed to run test '${test.name}'`}`);
      } else {
        console.log(`FAIL ${test.name}`);
      }
    }
    const max = results.max_score || 0;
    if (max !== 0) {
      const byTests = (passed / results.tests.length) * max;
      console.log(`Total points for ${runner}: ${byTests.toFixed(2)}/${max}`);
    }
  }
  let totalPoints = 0;
  let maxPoints = 0;
  for (const { results } of runners) {
    if (!results.max_score) continue;
    maxPoints += results.max_score;
    for (const { score } of results.tests) totalPoints += score;
  }
  if (maxPoints) console.log(`::notice title=Autograding complete::Points ${totalPoints}/${maxPoints}`);
  if (runners.some((r) => r.results.status === "fail")) return 1;
  if (runners.some((r) => r.results.status === "error")) return 1;
  return 0;
}

try {
  process.exitCode = main(process.argv[2] || "");
} catch (error) {
  console.error(error.message);
  process.exitCode = 1;
}

// The outcome of a test script as the Python side reads it (node_helpers.py):
//
//   require('./run').run(async () => { ...; return result; });
//
'use strict';

// Runs main() and turns its outcome into the process's: the value it
// returns is printed as one line of JSON on stdout (what the Python side
// reads, see node_helpers.py), an exception goes to stderr with status 1.
// A hard deadline (GUST_JS_TIMEOUT_MS, default 60 s) bounds the whole run.
function run(main) {
  const limit = Number(process.env.GUST_JS_TIMEOUT_MS || 60000);
  const timer = setTimeout(() => {
    process.stderr.write(`timed out after ${limit} ms\n`);
    process.exit(3);
  }, limit);
  Promise.resolve().then(main).then((result) => {
    clearTimeout(timer);
    process.stdout.write(JSON.stringify(result === undefined ? null : result) + '\n');
    process.exit(0);
  }, (err) => {
    clearTimeout(timer);
    process.stderr.write((err && err.stack) || String(err));
    process.stderr.write('\n');
    process.exit(1);
  });
}

module.exports = { run };

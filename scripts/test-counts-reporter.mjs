// A node:test reporter for scripts/run-tests.mjs: one JSON line per finished
// test (suites left out), as it finishes, so a file that is killed still
// leaves the counts of what ran:
//   {"outcome":"passed"|"failed"|"cancelled"|"skipped"|"todo","name":"...","nesting":0}
// It classifies tests the way Node's own summary does: a test that timed out,
// was cancelled by its parent or was aborted is "cancelled", not "failed".
const CANCELLED = new Set(['testTimeoutFailure', 'cancelledByParent', 'testAborted']);

function outcomeOf(type, data) {
  if (data.skip !== undefined && data.skip !== false) return 'skipped';
  if (data.todo !== undefined && data.todo !== false) return 'todo';
  if (type === 'test:pass') return 'passed';
  return CANCELLED.has(data.details?.error?.failureType) ? 'cancelled' : 'failed';
}

export default async function* counts(source) {
  for await (const { type, data } of source) {
    if (type !== 'test:pass' && type !== 'test:fail') continue;
    if (data.details?.type === 'suite') continue;
    yield JSON.stringify({ outcome: outcomeOf(type, data), name: data.name, nesting: data.nesting }) + '\n';
  }
}

// Preloaded (node --import) into a child process to move its wall clock
// NIGHTJAR_TEST_CLOCK_SHIFT_DAYS days ahead: Date.now() and new Date().
// For tests of data that ages (test/e2e/upgrade.test.ts: a fixture opened
// as if a year after it was made), which cannot wait for real time.
// Timers and monotonic clocks are untouched.
const shift = Number(process.env.NIGHTJAR_TEST_CLOCK_SHIFT_DAYS ?? 0) * 24 * 3600 * 1000;
const RealDate = Date;
class ShiftedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(RealDate.now() + shift);
    else super(...args);
  }
  static now() {
    return RealDate.now() + shift;
  }
}
globalThis.Date = ShiftedDate;

import assert from 'node:assert/strict';
import { DeviceLogError } from '../../src/agent/devices/log-entry.js';

/** The DeviceLogError code `f` throws (any other error fails the test), or undefined if it throws nothing. */
export function deviceLogErrorCode(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    assert.ok(e instanceof DeviceLogError, String(e));
    return e.code;
  }
}

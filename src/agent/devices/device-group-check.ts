/**
 * Whether a profile database has several devices, read without loading the
 * agent: a front end that would otherwise answer from the chat tables alone
 * first catches up with the device log when it does.
 */
import type Database from 'better-sqlite3-multiple-ciphers';

export function hasDeviceGroup(db: Database.Database): boolean {
  const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'agent_device_group'").get();
  return table !== undefined && db.prepare('SELECT 1 FROM agent_device_group WHERE id = 1').get() !== undefined;
}

/** A person's devices: `devices [list]`, `devices link`, `devices join`, `devices rename`, `devices remove` (docs/devices.md). */
import { hostname } from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import type { DeviceView } from '../api/operations.js';
import { ApiError } from '../api/errors.js';
import { profileExists } from '../chat/profile-paths.js';
import { printer, safe, style } from './output.js';
import { askLine, canAsk, newPassphrase, profilePassphrase } from './passphrase.js';
import { createProfile } from './profile-commands.js';
import { callProfile, profileDir, profileOptions, withProfile, type ProfileFlags } from './profile-access.js';
import { readSecretFile } from './secret-file.js';

function deviceNumber(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1 || n > 255) throw new InvalidArgumentError('a device number from: nightjar devices');
  return n;
}

/** A default name for this device: the machine's name. */
function machineName(): string {
  const name = hostname().split('.')[0] ?? '';
  return name === '' ? 'this device' : name.slice(0, 64);
}

function ago(iso: string | null): string {
  if (iso === null) return 'not heard from yet';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 90) return 'active now';
  if (s < 90 * 60) return `last seen ${Math.round(s / 60)} min ago`;
  if (s < 36 * 3600) return `last seen ${Math.round(s / 3600)} h ago`;
  return `last seen ${Math.round(s / 86400)} days ago`;
}

function deviceLine(d: DeviceView): string {
  const what = d.removedAt !== null ? style.dim('removed') : d.thisDevice ? style.green('this device') : ago(d.lastSeenAt);
  return `${d.device}. ${safe(d.name)}  ${what}`;
}

function printDevices(flags: ProfileFlags, devices: readonly DeviceView[]): void {
  const out = printer(flags.json);
  if (devices.length === 0) out.note('This profile is on this device only. Link another with: nightjar devices link');
  for (const d of devices) out.print(d, () => deviceLine(d));
}

function linkCommand(devices: Command): void {
  profileOptions(devices.command('link').description('link a new device to this profile: prints a one-time link and QR code, and waits for the new device'))
    .option('--name <name>', "this device's name, if it has none yet (default: the machine's name)")
    .option('--yes', 'do not ask to confirm the verification code (for scripts: check it some other way)')
    .option('--no-qr', 'print only the link')
    .option('--cancel', 'withdraw the link in progress')
    .action(async (flags: ProfileFlags & { name?: string; yes?: boolean; qr?: boolean; cancel?: boolean }) => {
      const out = printer(flags.json);
      if (flags.cancel) {
        const r = await callProfile(flags, 'devices.link.cancel', {});
        out.print(r, () => (r.cancelled ? 'The device link is withdrawn.' : 'No device link was in progress.'));
        return;
      }
      if (!flags.yes && !canAsk()) throw new ApiError('BAD_INPUT', 'devices link asks you to compare a code; without a terminal, add --yes (and compare it yourself)');
      await withProfile(flags, 'the link stays open until it expires; run nightjar devices link again to go on', async (call) => {
        const started = await call('devices.link', { name: flags.name ?? machineName() });
        if (!started.confirmed) {
          const { qrLines } = await import('./qr.js');
          out.print(started, () =>
            [
              ...qrLines(started.link, flags),
              `Device link: use it on the new device within 10 minutes (it works once):`,
              started.link,
              style.dim(`On the new device run: nightjar devices join '<link>' --name NAME`),
            ].join('\n'),
          );
          const answer = await call('devices.link.wait', {});
          out.print(answer, () => `${safe(answer.name)} used the link. Verification code: ${style.bold(answer.code)}`);
          if (!flags.yes) {
            const reply = (await askLine('Does the new device show the same code? [y/N] ')).toLowerCase();
            if (reply !== 'y' && reply !== 'yes') {
              await call('devices.link.cancel', {});
              throw new ApiError('DEVICE_LINK', 'the codes differ, so someone else may have used the link: it is withdrawn and nothing was sent');
            }
          }
        }
        const linked = await call('devices.link.confirm', {});
        out.print(linked, () => `Linked "${safe(linked.name)}" as device ${linked.device}: it has this profile now, and every message shows on both.`);
      });
    });
}

function joinCommand(devices: Command): void {
  profileOptions(
    devices
      .command('join')
      .description('make this a new device of your profile, from a link of: nightjar devices link (run again to resume)')
      .argument('[link]', 'nightjar:device#… (not needed to resume)'),
  )
    .option('--name <name>', "this device's name (default: the machine's name)")
    .option('--history <how much>', 'the history to copy: all, none, or days such as 30d', 'all')
    .action(async (link: string | undefined, flags: ProfileFlags & { name?: string; history: string }) => {
      const dir = profileDir(flags);
      let passphrase = flags.passphraseFile === undefined ? undefined : readSecretFile(flags.passphraseFile);
      if (!profileExists(dir)) {
        if (link === undefined) throw new ApiError('BAD_INPUT', 'give the device link from: nightjar devices link (on your other device)');
        passphrase ??= await newPassphrase(profilePassphrase(dir));
        // A placeholder until the real profile arrives; nothing uses it meanwhile (operations refuse with LINKING).
        await createProfile(dir, 'new device', passphrase);
      }
      const out = printer(flags.json);
      await withProfile(
        flags,
        'run nightjar devices join again to go on',
        async (call) => {
          const answer = await call('devices.join', { ...(link === undefined ? {} : { link }), name: flags.name ?? machineName(), history: flags.history });
          out.print(answer, () => `Verification code: ${style.bold(answer.code)}\nCheck that your other device shows the same code, and confirm there.`);
          const joined = await call('devices.join.wait', {});
          out.print(joined, () => `This is now device ${joined.device} of ${safe(joined.profile)}'s profile. See your devices with: nightjar devices`);
        },
        passphrase,
      );
    });
}

export function devicesCommand(): Command {
  const devices = new Command('devices').description('the devices your profile is on: list, link a new one, rename, remove');
  profileOptions(devices.command('list', { isDefault: true }).description("list this profile's devices")).action(async (flags: ProfileFlags) => {
    printDevices(flags, (await callProfile(flags, 'devices', {})).devices);
  });
  linkCommand(devices);
  joinCommand(devices);
  profileOptions(devices.command('rename').description('rename device N on every device').argument('<n>', 'device number (see: nightjar devices)', deviceNumber).argument('<name>', 'its new name')).action(
    async (n: number, name: string, flags: ProfileFlags) => {
      printDevices(flags, (await callProfile(flags, 'devices.rename', { device: n, name })).devices);
    },
  );
  profileOptions(
    devices
      .command('remove')
      .description('remove device N (a lost or old one): it reads nothing sent from now on, and is told')
      .argument('<n>', 'device number (see: nightjar devices)', deviceNumber),
  )
    .option('--yes', 'do not ask to confirm')
    .action(async (n: number, flags: ProfileFlags & { yes?: boolean }) => {
      const out = printer(flags.json);
      if (!flags.yes) {
        if (!canAsk()) throw new ApiError('BAD_INPUT', 'devices remove asks you to confirm; without a terminal, add --yes');
        const reply = (await askLine(`Remove device ${n}? It will read nothing new, and linking it again needs a new link. [y/N] `)).toLowerCase();
        if (reply !== 'y' && reply !== 'yes') return out.note('Nothing was removed.');
      }
      const r = await callProfile(flags, 'devices.remove', { device: n });
      out.print(r, () =>
        !r.removed
          ? `Device ${n} was removed already.`
          : [
              `Device ${n} is removed: your other devices moved to a new device log it cannot read, and your conversations move to new queues with new keys.`,
              ...(r.notMoved > 0 ? [style.yellow(`${r.notMoved} conversation${r.notMoved === 1 ? '' : 's'} could not start moving (a relay is down): run nightjar rotate for them later.`)] : []),
            ].join('\n'),
      );
    });
  return devices;
}

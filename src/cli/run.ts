/** Process entry point of the `nightjar` command (see bin/nightjar). */
import { watchParent } from './parent-watch.js';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  // Answered before the command definitions load: scripts call this to probe for nightjar.
  const { VERSION } = await import('./version.js');
  process.stdout.write(VERSION + '\n');
} else {
  watchParent(process.env);
  // The slowest step of a command on a profile, begun before everything else loads.
  const { prefetchProfileKey } = await import('./key-prefetch.js');
  prefetchProfileKey(args, process.env);
  const { main } = await import('./main.js');
  await main(args);
}

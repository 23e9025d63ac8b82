/** Process entry point of the `nightjar` command (see bin/nightjar). */
import { watchParent } from './parent-watch.js';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  // Answered before the command definitions load: scripts call this to probe for nightjar.
  const { VERSION } = await import('./version.js');
  process.stdout.write(VERSION + '\n');
} else {
  watchParent(process.env);
  const { main } = await import('./main.js');
  await main(args);
}

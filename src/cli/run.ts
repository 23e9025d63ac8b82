/** Process entry point of the `nightjar` command (see bin/nightjar). */
import { main } from './main.js';

await main(process.argv.slice(2));

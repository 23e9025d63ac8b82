/** Process entry point of the `nightjar` command (see bin/nightjar). */
import { main } from './main.js';
import { watchParent } from './parent-watch.js';

watchParent(process.env);
await main(process.argv.slice(2));

/** Entry point of the `runbooks` CLI (bin/runbooks.js, `npm start`): parse, run, exit with the code. */
import { run } from './program';

void run(process.argv).then((code) => process.exit(code));

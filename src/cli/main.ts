/** Entry point of the `runbooks` CLI (bin/runbooks.js, `npm start`): parse, run, exit with the code. */
import { run } from './program';

// `npm start | tee log` then Ctrl-C: the reader dies first. Output is lost, but shutdown must still run.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

void run(process.argv).then((code) => process.exit(code));

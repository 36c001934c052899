/** One line of progress on stdout, with the time, from either side of the bench. */
export const progress = (line: string) =>
  process.stdout.write(
    `[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`,
  );

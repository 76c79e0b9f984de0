/** One `moec` sub-command. `run` gets the arguments after the command name and returns the exit status. */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

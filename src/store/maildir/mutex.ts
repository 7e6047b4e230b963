/** A promise-chain mutex: operations on one folder run one at a time within a process. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  /** Run fn after every earlier caller finished; its result or error is passed through. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

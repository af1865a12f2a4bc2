/**
 * A wake-up flag: `ring` before `wait` is not lost (the next wait returns at
 * once), which is what lets a loop check for work and then sleep race-free.
 */
export class Doorbell {
  #rung = false;
  #waiters: Array<(rung: boolean) => void> = [];

  ring(): void {
    this.#rung = true;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake(true);
  }

  /** Resolves true when rung, false when `timeoutMs` passed first. */
  wait(timeoutMs?: number): Promise<boolean> {
    if (this.#rung) {
      this.#rung = false;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const wake = (rung: boolean) => {
        if (timer) clearTimeout(timer);
        this.#rung = false;
        resolve(rung);
      };
      this.#waiters.push(wake);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.#waiters = this.#waiters.filter((w) => w !== wake);
          resolve(false);
        }, timeoutMs);
      }
    });
  }
}

import { int, type Var } from "@aviary/runtime/config";

/**
 * FEED_FANOUT_THRESHOLD: a follower count above which an author's posts are
 * merged at read time instead of fanned out; "off" (or 0) fans out everyone.
 * Parsed as null for "off", so code cannot mistake it for a count.
 */
export function fanoutThreshold(variable: string, options: { default: number }): Var<number | null> {
  const count = int(variable, { default: options.default, min: 0 });
  return {
    variable,
    parse: (raw) => {
      if (raw !== undefined && raw.trim().toLowerCase() === "off") return null;
      const value = count.parse(raw);
      return value === 0 ? null : value;
    },
  };
}

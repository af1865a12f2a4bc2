// Which language a code message is written in. Decided per request, not per
// account: the person reading the code is the one who just asked for it, on
// the device they asked from, and the account has no language of its own
// (profiles live in the user service). So: the request's `locale` field, else
// its Accept-Language header (the best-weighted tag we have a template for),
// else English. The templates module falls back to English as well.
import { supportedLocales, type Locale } from "./templates.ts";

export function chooseLocale(requested: string, acceptLanguage: string | null): Locale {
  const tags = requested !== "" ? [requested] : rankAcceptLanguage(acceptLanguage ?? "");
  for (const tag of tags) {
    const language = tag.split("-")[0]?.toLowerCase() ?? "";
    if ((supportedLocales as readonly string[]).includes(language)) return language as Locale;
  }
  return "en";
}

/** Accept-Language tags, best first (q=0 dropped; malformed entries ignored). */
function rankAcceptLanguage(header: string): string[] {
  return header
    .split(",")
    .slice(0, 20)
    .map((part, index) => {
      const [tag = "", ...params] = part.trim().split(";");
      const q = params.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
      return { tag: tag.trim(), q: q === undefined ? 1 : Number(q), index };
    })
    .filter((entry) => /^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$/.test(entry.tag) && entry.q > 0)
    .sort((a, b) => b.q - a.q || a.index - b.index)
    .map((entry) => entry.tag);
}

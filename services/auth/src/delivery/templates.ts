// The words around a one-time code, per purpose and language: an email
// (subject, plain text and HTML) and an SMS. Adding a language is adding one
// entry here; anything not here is sent in English.
import type { CodePurpose } from "../domain/codes.ts";

export const supportedLocales = ["en", "de"] as const;
export type Locale = (typeof supportedLocales)[number];

export interface CodeTexts {
  subject: string;
  /** The line above the code. */
  intro: string;
  /** The line below it; `{minutes}` is replaced. */
  expiry: string;
  /** Why the reader may ignore the message. */
  ignore: string;
  /** The whole SMS; `{code}` and `{minutes}` are replaced. */
  sms: string;
}

const texts: Record<Locale, Record<CodePurpose, CodeTexts>> = {
  en: {
    verify: {
      subject: "Your Aviary verification code",
      intro: "Use this code to confirm it is you:",
      expiry: "It works once, for the next {minutes} minutes.",
      ignore: "If you did not create an Aviary account, you can ignore this message.",
      sms: "Your Aviary verification code is {code}. It expires in {minutes} minutes.",
    },
    password_reset: {
      subject: "Reset your Aviary password",
      intro: "Use this code to choose a new password:",
      expiry: "It works once, for the next {minutes} minutes.",
      ignore: "If you did not ask to reset your password, ignore this message: your password stays as it is.",
      sms: "Your Aviary password reset code is {code}. It expires in {minutes} minutes. Didn't ask? Ignore this.",
    },
  },
  de: {
    verify: {
      subject: "Dein Aviary-Bestätigungscode",
      intro: "Mit diesem Code bestätigst du, dass du es bist:",
      expiry: "Er gilt einmal, für die nächsten {minutes} Minuten.",
      ignore: "Wenn du kein Aviary-Konto angelegt hast, kannst du diese Nachricht ignorieren.",
      sms: "Dein Aviary-Bestätigungscode ist {code}. Er läuft in {minutes} Minuten ab.",
    },
    password_reset: {
      subject: "Dein Aviary-Passwort zurücksetzen",
      intro: "Mit diesem Code wählst du ein neues Passwort:",
      expiry: "Er gilt einmal, für die nächsten {minutes} Minuten.",
      ignore: "Wenn du das nicht angefordert hast, ignoriere diese Nachricht: dein Passwort bleibt unverändert.",
      sms: "Dein Aviary-Code zum Zurücksetzen des Passworts ist {code}. Er läuft in {minutes} Minuten ab.",
    },
  },
};

export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
}

function textsFor(purpose: CodePurpose, locale: string): { locale: Locale; texts: CodeTexts } {
  const known = (supportedLocales as readonly string[]).includes(locale) ? (locale as Locale) : "en";
  return { locale: known, texts: texts[known][purpose] };
}

function minutesOf(expiresInSeconds: number): string {
  return String(Math.max(1, Math.ceil(expiresInSeconds / 60)));
}

export function renderEmail(message: { purpose: CodePurpose; locale: string; code: string; expiresInSeconds: number }): RenderedEmail {
  const { locale, texts: t } = textsFor(message.purpose, message.locale);
  const expiry = t.expiry.replace("{minutes}", minutesOf(message.expiresInSeconds));
  const text = `${t.intro}\n\n    ${message.code}\n\n${expiry}\n\n${t.ignore}\n`;
  const html = [
    "<!doctype html>",
    `<html lang="${locale}"><head><meta charset="utf-8"><title>${escapeHtml(t.subject)}</title></head>`,
    '<body style="font-family: system-ui, sans-serif; color: #1b1b1f">',
    `<p>${escapeHtml(t.intro)}</p>`,
    `<p style="font-size: 28px; font-weight: 600; letter-spacing: 6px" data-code="${escapeHtml(message.code)}">${escapeHtml(message.code)}</p>`,
    `<p>${escapeHtml(expiry)}</p>`,
    `<p style="color: #5f5f6b; font-size: 13px">${escapeHtml(t.ignore)}</p>`,
    "</body></html>",
  ].join("\n");
  return { subject: t.subject, text, html };
}

export function renderSms(message: { purpose: CodePurpose; locale: string; code: string; expiresInSeconds: number }): string {
  return textsFor(message.purpose, message.locale).texts.sms.replace("{code}", message.code).replace("{minutes}", minutesOf(message.expiresInSeconds));
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

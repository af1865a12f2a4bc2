// Small DOM helpers: the app is plain DOM, one module per screen, no framework.
import { ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "@aviary/gen/google/rpc/error_details_pb";

type Child = Node | string | false | null | undefined;
type Attributes = Record<string, string | boolean | number | EventListener | undefined>;

/** `h("button", { type: "button", onclick }, "Follow")`: an element with attributes, listeners and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Attributes = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") element.addEventListener(name.replace(/^on/, ""), value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  append(element, ...children);
  return element;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === false || child === null || child === undefined) continue;
    parent.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }
}

/** A labelled input: the label wraps the field, so the pair stays together and is always associated. */
export function field(label: string, input: HTMLInputElement | HTMLTextAreaElement): HTMLLabelElement {
  return h("label", { class: "field" }, h("span", {}, label), input);
}

/** A form's error line: role=alert, so a screen reader announces a failed submit. */
export function errorLine(): { element: HTMLParagraphElement; show(message: string): void; clear(): void } {
  const element = h("p", { class: "error", role: "alert" });
  return {
    element,
    show: (message) => (element.textContent = message),
    clear: () => (element.textContent = ""),
  };
}

/**
 * Runs a form's submit handler with the button disabled meanwhile and any
 * failure shown in its error line, so every screen reports errors the same way.
 */
export function onSubmit(form: HTMLFormElement, error: ReturnType<typeof errorLine>, handler: () => Promise<void>): void {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const buttons = [...form.querySelectorAll("button")];
    for (const button of buttons) button.disabled = true;
    error.clear();
    handler()
      .catch((failure: unknown) => error.show(describeError(failure)))
      .finally(() => {
        for (const button of buttons) button.disabled = false;
      });
  });
}

/** A failure as a user should read it: the service's message, and the fields it names. */
export function describeError(failure: unknown): string {
  const error = ConnectError.from(failure);
  const violations = error.findDetails(BadRequestSchema).flatMap((detail) => detail.fieldViolations);
  if (violations.length > 0) return violations.map((v) => `${v.field}: ${v.description}`).join("; ");
  return error.rawMessage;
}

export function relativeTime(date: Date | undefined, now = new Date()): string {
  if (!date) return "";
  const seconds = Math.round((now.getTime() - date.getTime()) / 1000);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  return date.toLocaleDateString();
}

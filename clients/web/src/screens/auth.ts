// Sign up, verify (the code from the dev sink or the mail), sign in.
import { append, h, field, errorLine, onSubmit } from "../dom.ts";
import { navigate, type Screen } from "../shell.ts";
import { api, session } from "../transport.ts";

const emailInput = (value = "") => h("input", { type: "email", name: "email", autocomplete: "email", required: true, value });

export const signUpScreen: Screen = (root) => {
  const email = emailInput();
  const password = h("input", { type: "password", name: "password", autocomplete: "new-password", required: true, minlength: 12 });
  const error = errorLine();
  const form = h("form", { class: "card" },
    field("Email", email),
    field("Password (at least 12 characters)", password),
    error.element,
    h("button", { type: "submit" }, "Create account"),
  );
  onSubmit(form, error, async () => {
    await api.auth.register({ identity: { case: "email", value: email.value }, password: password.value });
    navigate(`verify?email=${encodeURIComponent(email.value)}`);
  });
  root.append(h("h1", {}, "Create your account"), form, h("p", {}, "Already have one? ", h("a", { href: "#/signin" }, "Sign in")));
};

export const verifyScreen: Screen = (root, _params, query) => {
  const email = emailInput(query.get("email") ?? "");
  const code = h("input", { type: "text", name: "code", inputmode: "numeric", autocomplete: "one-time-code", required: true, pattern: "[0-9]*" });
  const error = errorLine();
  const status = h("p", { role: "status" });
  const resend = h("button", { type: "button", class: "secondary" }, "Send a new code");
  resend.addEventListener("click", () => {
    error.clear();
    api.auth
      .sendVerificationCode({ identity: { case: "email", value: email.value } })
      .then(() => (status.textContent = "A new code is on its way."))
      .catch((failure: unknown) => error.show(String(failure)));
  });
  const form = h("form", { class: "card" }, field("Email", email), field("Verification code", code), error.element, h("button", { type: "submit" }, "Verify"), resend, status);
  onSubmit(form, error, async () => {
    await api.auth.verifyIdentity({ identity: { case: "email", value: email.value }, code: code.value });
    navigate(`signin?email=${encodeURIComponent(email.value)}&verified=1`);
  });
  root.append(
    h("h1", {}, "Verify your email"),
    h("p", {}, "Enter the code we sent you. Running ", h("code", {}, "make dev"), "? The codes are in ", h("code", {}, "tail -f .dev/codes.jsonl"), "."),
    form,
  );
};

export const signInScreen: Screen = (root, _params, query) => {
  const email = emailInput(query.get("email") ?? "");
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const error = errorLine();
  const form = h("form", { class: "card" }, field("Email", email), field("Password", password), error.element, h("button", { type: "submit" }, "Sign in"));
  onSubmit(form, error, async () => {
    const answer = await api.auth.login({ identity: { case: "email", value: email.value }, password: password.value, deviceName: "Web app" });
    if (answer.secondFactorRequired || !answer.tokens) throw new Error("This account uses two-factor sign-in, which the web app does not offer yet.");
    session.save(answer.userId, answer.tokens);
    // A new account has no username yet: pick one first.
    const { profile } = await api.user.getProfile({ userId: answer.userId });
    navigate(profile?.username ? "feed" : "profile?welcome=1");
  });
  append(
    root,
    h("h1", {}, "Sign in"),
    query.get("verified") ? h("p", { role: "status" }, "Your email is verified. Sign in to continue.") : null,
    form,
    h("p", {}, "New here? ", h("a", { href: "#/signup" }, "Create an account")),
  );
};

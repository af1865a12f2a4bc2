// The app shell: a hash router (the edge serves one page, so every screen
// lives after the #), the navigation with the live unread badges, and focus
// moved to each new screen's heading.
import { h } from "./dom.ts";
import { onLive, onResync, onStatus, startLive, stopLive, type LiveStatus } from "./realtime.ts";
import { api, onSignedOut, session } from "./transport.ts";
import { badges, chatBadge, navigate, notificationsBadge, type Screen } from "./shell.ts";
import { signInScreen, signUpScreen, verifyScreen } from "./screens/auth.ts";
import { feedScreen } from "./screens/feed.ts";
import { notificationsScreen } from "./screens/notifications.ts";
import { chatListScreen, conversationScreen, directScreen } from "./screens/chat.ts";
import { peopleScreen, profileScreen } from "./screens/profile.ts";

const publicRoutes: Record<string, Screen> = { signup: signUpScreen, verify: verifyScreen, signin: signInScreen };
const routes: Record<string, Screen> = {
  feed: feedScreen,
  people: peopleScreen,
  profile: profileScreen,
  notifications: notificationsScreen,
  chat: chatListScreen,
  "chat/c": conversationScreen,
  "chat/u": directScreen,
};

const main = document.getElementById("main")!;
const nav = document.getElementById("nav")!;
const liveStatus = document.getElementById("live-status")!;

function drawNav(signedIn: boolean): void {
  const link = (path: string, label: string, ...extra: Node[]) => h("li", {}, h("a", { href: `#/${path}`, "data-path": path }, label, ...extra));
  if (!signedIn) {
    nav.replaceChildren(h("ul", {}, link("signin", "Sign in"), link("signup", "Sign up")));
    return;
  }
  const signOut = h("button", { type: "button", class: "link" }, "Sign out");
  signOut.addEventListener("click", () => {
    void api.auth.logout({}).catch(() => undefined).finally(() => {
      stopLive();
      session.clear();
    });
  });
  nav.replaceChildren(
    h("ul", {},
      link("feed", "Home"),
      link("people", "People"),
      link("notifications", "Notifications", notificationsBadge),
      link("chat", "Chat", chatBadge),
      link("profile", "Profile"),
      h("li", {}, signOut),
    ),
  );
}

const statusText: Record<LiveStatus, string> = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", stopped: "" };
onStatus((status) => {
  liveStatus.textContent = statusText[status];
  liveStatus.dataset["status"] = status;
});

let leave: (() => void) | void = undefined;
let signedInShell = false;

function route(): void {
  const path = location.hash.replace(/^#\/?/, "");
  const [pathPart = "", queryPart = ""] = path.split("?");
  const segments = pathPart.split("/").filter((s) => s !== "");
  const signedIn = session.current() !== undefined;
  if (signedIn !== signedInShell) {
    signedInShell = signedIn;
    drawNav(signedIn);
    if (signedIn) startSignedIn();
  }
  const table = signedIn ? routes : publicRoutes;
  // The longest registered prefix wins: "chat/c/<id>" before "chat".
  let screen: Screen | undefined;
  let params: string[] = [];
  for (let n = segments.length; n > 0 && !screen; n--) {
    screen = table[segments.slice(0, n).join("/")];
    params = segments.slice(n);
  }
  if (!screen) return navigate(signedIn ? "feed" : "signin");
  leave?.();
  main.replaceChildren();
  for (const a of nav.querySelectorAll("a")) {
    if (segments[0] === a.dataset["path"]) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  leave = screen(main, params, new URLSearchParams(queryPart));
  // Focus follows the screen change, so keyboard and screen-reader users start at its heading.
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus();
    document.title = `${heading.textContent} · Aviary`;
  }
}

function startSignedIn(): void {
  startLive();
  void badges.refreshNotifications();
  void badges.refreshChat();
}

onLive("notificationsChanged", (change) => badges.notifications(change.unreadCount));
onLive("chatMessage", () => void badges.refreshChat());
onLive("chatReceipt", () => void badges.refreshChat());
onResync(() => {
  void badges.refreshNotifications();
  void badges.refreshChat();
});
onSignedOut(() => {
  stopLive();
  signedInShell = false;
  drawNav(false);
  navigate("signin");
  route();
});

window.addEventListener("hashchange", route);
route();

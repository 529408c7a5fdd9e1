// The hosted pages: plain TypeScript and the DOM over Connect-Web, through the
// client package's browser entry. One bundle; the path under /ui/ names the
// page. The session token lives in this origin's sessionStorage and travels as
// a bearer header (no cookie, so third-party cookie blocking changes nothing).
// docs/hosted-pages.md tells how to brand or replace these pages.
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { ConnectError, createWebClients, errorReason, IdentityKind, SecondFactorKind, type SecondFactorChallenge } from "../../packages/client/src/web.ts";
import { chooseLang, currentLang, type Key, t } from "./i18n.ts";

const TOKEN_KEY = "identity.session";
const TENANT_KEY = "identity.tenant";
const query = new URLSearchParams(location.search);
// A tenant other than the default one: named once by ?tenant=, kept for the tab.
if (query.get("tenant")) sessionStorage.setItem(TENANT_KEY, query.get("tenant")!);

const token = () => sessionStorage.getItem(TOKEN_KEY) ?? undefined;
const clients = createWebClients(location.origin, { credential: token });
const tenantHeader = (): HeadersInit => {
  const tenant = sessionStorage.getItem(TENANT_KEY);
  return tenant ? { "x-tenant-id": tenant } : {};
};
const opts = () => ({ headers: tenantHeader() });

// ---- DOM helpers ----
type Child = Node | string | null | undefined | false;
function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | boolean> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false) continue;
    el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined && child !== false) el.append(child);
  return el;
}
let fieldSeq = 0;
function field(label: string, name: string, type = "text", extra: Record<string, string | boolean> = {}): HTMLElement {
  const id = `f${fieldSeq++}`;
  return h("p", { class: "field" }, h("label", { for: id }, label), h("input", { id, name, type, ...extra }));
}
const button = (label: string, attrs: Record<string, string> = {}) => h("button", { type: "submit", ...attrs }, label);
const link = (label: string, page: string) => h("a", { href: `/ui/${page}` }, label);
const main = () => document.getElementById("main")!;
const status = () => document.getElementById("status")!;

function say(message: string, kind: "ok" | "error" = "ok") {
  const region = status();
  region.className = kind;
  region.textContent = message;
}

function errorText(error: unknown): string {
  if (error instanceof ConnectError) {
    const reason = errorReason(error);
    return reason ? `${error.rawMessage} (${reason})` : error.rawMessage;
  }
  return t("error");
}

/** A form whose submit runs `action` with its values; errors are announced. */
function form(children: Child[], action: (values: Record<string, string>, el: HTMLFormElement) => Promise<void>): HTMLFormElement {
  const el = h("form", { novalidate: true }, ...children);
  el.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = Object.fromEntries([...new FormData(el).entries()].map(([k, v]) => [k, String(v)]));
    const submit = el.querySelector<HTMLButtonElement>("button[type=submit]");
    if (submit) submit.disabled = true;
    action(values, el)
      .catch((error: unknown) => say(errorText(error), "error"))
      .finally(() => {
        if (submit) submit.disabled = false;
      });
  });
  return el;
}

function page(titleKey: Key, ...content: Child[]) {
  document.title = t(titleKey);
  const heading = h("h1", { tabindex: "-1" }, t(titleKey));
  main().replaceChildren(heading, ...content.filter((c): c is Node | string => !!c));
  heading.focus();
}

const date = (ts: Timestamp | undefined) => (ts ? timestampDate(ts).toLocaleString(currentLang()) : "");
const go = (path: string) => location.assign(`/ui/${path}`);

function signedIn(answer: { sessionToken: string }) {
  sessionStorage.setItem(TOKEN_KEY, answer.sessionToken);
  go("account");
}

// ---- passkeys (WebAuthn): the service sends options as JSON, the browser parses them and answers with toJSON() ----
async function createPasskey(optionsJson: string): Promise<string> {
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(JSON.parse(optionsJson) as PublicKeyCredentialCreationOptionsJSON);
  const credential = (await navigator.credentials.create({ publicKey })) as PublicKeyCredential | null;
  if (!credential) throw new Error("no passkey was created");
  return JSON.stringify(credential.toJSON());
}
async function usePasskey(optionsJson: string): Promise<string> {
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(JSON.parse(optionsJson) as PublicKeyCredentialRequestOptionsJSON);
  const credential = (await navigator.credentials.get({ publicKey })) as PublicKeyCredential | null;
  if (!credential) throw new Error("no passkey was used");
  return JSON.stringify(credential.toJSON());
}

// ---- pages ----
function signUpPage() {
  page(
    "signUp",
    form(
      [
        field(t("email"), "email", "email", { autocomplete: "email", required: true }),
        field(t("password"), "password", "password", { autocomplete: "new-password", required: true }),
        button(t("signUp")),
      ],
      async (v) => {
        await clients.identity.signUp({ email: v.email!, password: v.password!, locale: currentLang() }, opts());
        say(t("signUpSent"));
      },
    ),
    h("p", {}, t("haveAccount"), " ", link(t("signIn"), "sign-in")),
  );
}

async function verifyPage() {
  page("verifyTitle");
  const answer = await clients.identity.verifyIdentity({ token: query.get("token") ?? "" }, opts());
  sessionStorage.setItem(TOKEN_KEY, answer.sessionToken);
  page("verified", h("p", {}, link(t("toAccount"), "account")));
}

function handleSignIn(answer: { sessionToken: string; secondFactorChallenge?: SecondFactorChallenge | undefined }) {
  if (answer.secondFactorChallenge) return secondFactorStep(answer.secondFactorChallenge);
  signedIn(answer);
}

function secondFactorStep(challenge: SecondFactorChallenge) {
  const complete = (code: { case: "totpCode" | "recoveryCode" | "smsCode"; value: string }) => async () => {
    handleSignIn(await clients.sessions.completeSecondFactor({ challenge: challenge.challenge, code }, opts()));
  };
  const kinds = new Set(challenge.kinds);
  page(
    "secondFactorTitle",
    kinds.has(SecondFactorKind.PASSKEY) &&
      form([button(t("usePasskey"))], async () => {
        const answer = await usePasskey(challenge.passkeyOptionsJson);
        handleSignIn(
          await clients.sessions.completeSecondFactor({ challenge: challenge.challenge, code: { case: "passkeyResponseJson", value: answer } }, opts()),
        );
      }),
    kinds.has(SecondFactorKind.TOTP) &&
      form([field(t("totpCode"), "code", "text", { inputmode: "numeric", autocomplete: "one-time-code", required: true }), button(t("submit"))], (v) =>
        complete({ case: "totpCode", value: v.code! })(),
      ),
    kinds.has(SecondFactorKind.SMS) &&
      form([button(t("sendSms"))], async () => {
        const sent = await clients.sessions.sendSecondFactorCode({ challenge: challenge.challenge }, opts());
        say(t("smsSent", { hint: sent.phoneHint }));
      }),
    kinds.has(SecondFactorKind.SMS) &&
      form([field(t("smsCode"), "code", "text", { inputmode: "numeric", autocomplete: "one-time-code" }), button(t("submit"))], (v) =>
        complete({ case: "smsCode", value: v.code! })(),
      ),
    kinds.has(SecondFactorKind.RECOVERY_CODE) &&
      form([field(t("recoveryCode"), "code", "text", { autocomplete: "off" }), button(t("submit"))], (v) =>
        complete({ case: "recoveryCode", value: v.code! })(),
      ),
  );
}

function signInPage() {
  const providers = (query.get("providers") ?? "").split(",").filter((p) => /^[\w.-]+$/.test(p));
  const social = providers.map((providerId) => {
    const b = h("button", { type: "button", class: "social" }, providerId);
    b.addEventListener("click", () => {
      clients.sessions
        .startSocialSignIn({ providerId, redirectUri: `${location.origin}/ui/social-callback` }, opts())
        .then((started) => location.assign(started.authorizationUrl))
        .catch((error: unknown) => say(errorText(error), "error"));
    });
    return b;
  });
  let phone = "";
  page(
    "signIn",
    form(
      [
        field(t("email"), "email", "email", { autocomplete: "username", required: true }),
        field(t("password"), "password", "password", { autocomplete: "current-password", required: true }),
        button(t("signIn")),
      ],
      async (v) =>
        handleSignIn(
          await clients.sessions.signIn(
            { method: { case: "emailPassword", value: { email: v.email!, password: v.password! } }, profileMask: { paths: [] } },
            opts(),
          ),
        ),
    ),
    h("p", {}, link(t("forgot"), "forgot-password"), " · ", t("noAccount"), " ", link(t("signUp"), "sign-up")),
    form([button(t("signInPasskey"))], async () => {
      const { optionsJson } = await clients.sessions.startPasskeySignIn({}, opts());
      const answer = await usePasskey(optionsJson);
      handleSignIn(await clients.sessions.signIn({ method: { case: "passkey", value: { responseJson: answer } } }, opts()));
    }),
    h("h2", {}, t("phone")),
    form([field(t("phone"), "phone", "tel", { autocomplete: "tel" }), button(t("sendCode"))], async (v) => {
      phone = v.phone!;
      await clients.sessions.sendSignInCode({ phone, locale: currentLang() }, opts());
      say(t("code"));
    }),
    form([field(t("code"), "code", "text", { inputmode: "numeric", autocomplete: "one-time-code" }), button(t("signIn"))], async (v) =>
      handleSignIn(await clients.sessions.signIn({ method: { case: "phoneCode", value: { phone, code: v.code! } } }, opts())),
    ),
    social.length > 0 && h("h2", {}, t("orWith")),
    ...social,
    form([button(t("guest"), { class: "secondary" })], async () =>
      handleSignIn(await clients.sessions.signIn({ method: { case: "guest", value: {} } }, opts())),
    ),
  );
}

async function socialCallbackPage() {
  page("signIn");
  const answer = await clients.sessions.completeSocialSignIn(
    { state: query.get("state") ?? "", code: query.get("code") ?? "", iss: query.get("iss") ?? "", user: query.get("user") ?? "" },
    opts(),
  );
  signedIn(answer);
}

function forgotPage() {
  page(
    "forgotTitle",
    form([field(t("email"), "email", "email", { autocomplete: "email", required: true }), button(t("submit"))], async (v) => {
      await clients.identity.startPasswordReset({ email: v.email!, locale: currentLang() }, opts());
      say(t("resetSent"));
    }),
  );
}

async function resetPage() {
  const code = query.get("token") ?? "";
  page("resetTitle");
  await clients.identity.checkPasswordResetCode({ code }, opts());
  page(
    "resetTitle",
    form([field(t("newPassword"), "password", "password", { autocomplete: "new-password", required: true }), button(t("save"))], async (v, el) => {
      await clients.identity.completePasswordReset({ code, newPassword: v.password! }, opts());
      el.remove();
      say(t("resetDone"));
      main().append(h("p", {}, link(t("signIn"), "sign-in")));
    }),
  );
}

function emailChangePage() {
  if (!token()) return page("notSignedIn", h("p", {}, link(t("signIn"), "sign-in")));
  page(
    "changeEmail",
    form([field(t("newEmail"), "email", "email", { autocomplete: "email", required: true }), button(t("sendCode"))], async (v) => {
      await clients.identity.startEmailChange({ newEmail: v.email! });
      say(t("emailCodeSent"));
    }),
    form(
      [field(t("code"), "code", "text", { inputmode: "numeric", autocomplete: "one-time-code", value: query.get("code") ?? "" }), button(t("confirm"))],
      async (v) => {
        await clients.identity.confirmEmailChange({ code: v.code! });
        say(t("emailChanged"));
      },
    ),
  );
}

async function accountPage() {
  if (!token()) return page("notSignedIn", h("p", {}, link(t("signIn"), "sign-in")));
  page("title", h("p", {}, t("loading")));
  const [{ account }, { sessions }, { identities }, factors, consents] = await Promise.all([
    clients.accounts.getAccount({}),
    clients.sessions.listSessions({}),
    clients.identity.listIdentities({}),
    clients.accounts.listSecondFactors({}),
    clients.accounts.listConsents({}),
  ]);
  const reload = () => void accountPage().catch((error: unknown) => say(errorText(error), "error"));
  const section = (key: Key, ...content: Child[]) => h("section", { "aria-labelledby": `h-${key}` }, h("h2", { id: `h-${key}` }, t(key)), ...content);

  const profile = form(
    [
      h("p", {}, account?.email ?? ""),
      field(t("displayName"), "displayName", "text", { value: account?.displayName ?? "", autocomplete: "name" }),
      field(t("pronouns"), "pronouns", "text", { value: account?.pronouns ?? "" }),
      field(t("language"), "locale", "text", { value: account?.locale ?? "" }),
      button(t("save")),
    ],
    async (v) => {
      await clients.accounts.updateAccount({
        account: { displayName: v.displayName!, pronouns: v.pronouns!, locale: v.locale! },
        updateMask: { paths: ["display_name", "pronouns", "locale"] },
      });
      say(t("saved"));
    },
  );

  const sessionItems = sessions.map((s) =>
    h(
      "li",
      { "data-session": s.id },
      `${s.userAgent || "?"} — ${date(s.createTime)}, ${t("lastSeen")} ${date(s.lastSeenTime)}`,
      s.current ? ` (${t("thisSession")})` : " ",
      !s.current &&
        form([button(t("revoke"), { "aria-label": `${t("revoke")} ${s.userAgent} ${date(s.createTime)}` })], async () => {
          await clients.sessions.revokeSession({ sessionId: s.id });
          say(t("revoked"));
          reload();
        }),
    ),
  );

  const identityItems = identities.map((i) =>
    h("li", {}, `${IdentityKind[i.kind]?.toLowerCase() ?? ""}: ${i.value || i.issuer} — ${i.verified ? t("verifiedLabel") : t("unverified")}`),
  );
  const factorItems = factors.factors.map((f) =>
    h(
      "li",
      { "data-factor": f.id },
      `${SecondFactorKind[f.kind]?.toLowerCase() ?? ""} — ${date(f.createTime)} `,
      form([button(t("remove"))], async () => {
        await clients.accounts.removeSecondFactor({ factorId: f.id });
        reload();
      }),
    ),
  );
  const consentItems = consents.consents.map((c) =>
    h(
      "li",
      {},
      `${c.purpose} (${c.version}) — ${c.granted ? t("granted") : t("withdrawn")} `,
      form([button(c.granted ? t("withdraw") : t("grant"))], async () => {
        await clients.accounts.updateConsents({ consents: [{ purpose: c.purpose, version: c.version, granted: !c.granted }] });
        reload();
      }),
    ),
  );

  const exportForm = form([button(t("exportButton"))], async () => {
    const sections: Record<string, unknown> = {};
    for await (const part of clients.accounts.exportAccountData({})) sections[part.section] = JSON.parse(part.json);
    const url = URL.createObjectURL(new Blob([JSON.stringify(sections, null, 2)], { type: "application/json" }));
    const a = h("a", { href: url, download: "account-data.json" });
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  });
  const deleteForm = form(
    [
      h("p", {}, t("deleteHelp")),
      field(t("password"), "password", "password", { autocomplete: "current-password" }),
      button(t("deleteButton"), { class: "danger" }),
    ],
    async (v) => {
      await clients.accounts.deleteAccount({ password: v.password ?? "" });
      sessionStorage.removeItem(TOKEN_KEY);
      page("deleted");
    },
  );
  const signOut = form([button(t("signOut"), { class: "secondary" })], async () => {
    await clients.sessions.signOut({}).catch(() => undefined);
    sessionStorage.removeItem(TOKEN_KEY);
    go("sign-in");
  });

  page(
    "title",
    signOut,
    section("profile", profile, h("p", {}, link(t("changeEmail"), "email-change"))),
    section("sessions", h("ul", { id: "sessions" }, ...sessionItems)),
    section("identities", h("ul", {}, ...identityItems)),
    section(
      "secondFactors",
      factorItems.length ? h("ul", { id: "factors" }, ...factorItems) : h("p", {}, t("none")),
      form([button(t("addPasskey"))], async () => {
        const { optionsJson } = await clients.accounts.startPasskeyRegistration({});
        const { recoveryCodes } = await clients.accounts.finishPasskeyRegistration({ responseJson: await createPasskey(optionsJson) });
        await accountPage();
        say(`${t("passkeyAdded")} ${t("recoveryCodes")}: ${recoveryCodes.join(" ")}`);
      }),
    ),
    section("consents", consentItems.length ? h("ul", {}, ...consentItems) : h("p", {}, t("none"))),
    section("exportTitle", exportForm),
    section("deleteTitle", deleteForm),
  );
}

const PAGES: Record<string, () => void | Promise<void>> = {
  "": () => (token() ? accountPage() : signInPage()),
  "sign-up": signUpPage,
  "verify-email": verifyPage,
  "sign-in": signInPage,
  "social-callback": socialCallbackPage,
  "forgot-password": forgotPage,
  "reset-password": resetPage,
  // An invitation's link sets the first password the way a reset does.
  "accept-invitation": resetPage,
  "email-change": emailChangePage,
  account: accountPage,
};

function start() {
  document.documentElement.lang = currentLang();
  const switcher = document.getElementById("lang") as HTMLButtonElement;
  switcher.textContent = t("switchLang");
  switcher.addEventListener("click", () => {
    chooseLang(currentLang() === "fr" ? "en" : "fr");
    location.reload();
  });
  const name = location.pathname.replace(/^\/ui\/?/, "").replace(/\/$/, "");
  const render = PAGES[name] ?? (() => page("notFound"));
  Promise.resolve(render()).catch((error: unknown) => say(errorText(error), "error"));
}

start();

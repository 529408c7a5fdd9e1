// A real OpenID provider for tests: panva's oidc-provider on a loopback port,
// playing "Google" (discovery, JWKS, authorization code flow with PKCE, ID
// tokens). Nobody types a password: the test names who signs in next
// (`signInAs`) and `browse` follows the redirects like a browser with a cookie
// jar, while this server finishes the provider's login and consent
// interactions for that person. `rotateKeys` replaces the signing key (a new
// kid, the old one gone from the JWKS), as a provider's key rotation does.
// Also a test double of Apple's token endpoint that verifies the ES256
// client-secret JWT with jose.
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import * as jose from "jose";
import Provider, { type Configuration } from "oidc-provider";
import { AdminService, SocialProviderKind } from "../../gen/identity/v1/admin_service_pb.js";
import type { Caller } from "./clients.ts";

export interface TestPerson {
  sub: string;
  email?: string;
  emailVerified?: boolean;
  name?: string;
}

export interface TestOidcProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  /** The person the next interactive sign-in logs in. */
  signInAs(person: TestPerson): void;
  /** Follows an authorization URL through the provider's redirects to the redirect URI; returns its query (code, state, iss). */
  browse(authorizationUrl: string): Promise<URLSearchParams>;
  /** An ID token signed with the provider's current key (or `key`), for native-flow tests. */
  signIdToken(claims: jose.JWTPayload, options?: { key?: jose.JWK; expiresIn?: string | number; issuer?: string }): Promise<string>;
  /** A fresh signing key (new kid), the old one withdrawn from the JWKS; returns the new private JWK. */
  rotateKeys(): Promise<jose.JWK>;
  /** How many times the JWKS was fetched. */
  jwksFetches(): number;
  close(): Promise<void>;
}

async function newSigningKey(): Promise<jose.JWK> {
  const { privateKey } = await jose.generateKeyPair("RS256", { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  return { ...jwk, kid: randomBytes(8).toString("hex"), alg: "RS256", use: "sig" };
}

function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.address() as AddressInfo).port })));
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

export async function startOidcProvider(options: { redirectUri?: string } = {}): Promise<TestOidcProvider> {
  const clientId = `test-client-${randomBytes(4).toString("hex")}`;
  const clientSecret = randomBytes(24).toString("base64url");
  const redirectUri = options.redirectUri ?? "https://app.example.test/social/callback";
  const people = new Map<string, TestPerson>();
  let next: TestPerson | undefined;
  let key = await newSigningKey();
  let fetches = 0;
  let provider: Provider;

  const { server, port } = await listen((req, res) => {
    if (req.url?.startsWith("/jwks")) fetches++;
    if (req.url?.startsWith("/interaction/")) {
      interact(req, res).catch((error: unknown) => {
        res.statusCode = 500;
        res.end(String(error));
      });
      return;
    }
    provider.callback()(req, res);
  });
  const issuer = `http://127.0.0.1:${port}`;

  function build(): Provider {
    const configuration: Configuration = {
      clients: [
        {
          client_id: clientId,
          client_secret: clientSecret,
          redirect_uris: [redirectUri],
          grant_types: ["authorization_code"],
          response_types: ["code"],
          token_endpoint_auth_method: "client_secret_basic",
        },
      ],
      jwks: { keys: [key as never] },
      cookies: { keys: ["test-cookie-key-0123456789"] },
      claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
      // As Google does: the scope's claims in the ID token itself.
      conformIdTokenClaims: false,
      features: { devInteractions: { enabled: false } },
      interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
      pkce: { required: () => true },
      ttl: { AccessToken: 600, AuthorizationCode: 60, Grant: 600, IdToken: 600, Interaction: 600, Session: 600 },
      async findAccount(_ctx, sub) {
        const person = people.get(sub);
        if (!person) return undefined;
        return {
          accountId: sub,
          async claims() {
            return {
              sub,
              ...(person.email === undefined ? {} : { email: person.email, email_verified: person.emailVerified ?? true }),
              ...(person.name === undefined ? {} : { name: person.name }),
            };
          },
        };
      },
    };
    const built = new Provider(issuer, configuration);
    built.on("server_error", (_ctx, error) => console.error("oidc-provider server_error", error));
    return built;
  }
  provider = build();

  /** The login and consent screens, answered for the person named by signInAs. */
  async function interact(req: IncomingMessage, res: ServerResponse) {
    const details = await provider.interactionDetails(req, res);
    if (details.prompt.name === "login") {
      if (!next) throw new Error("signInAs was not called before browsing");
      people.set(next.sub, next);
      await provider.interactionFinished(req, res, { login: { accountId: next.sub } }, { mergeWithLastSubmission: false });
      return;
    }
    const grant = new provider.Grant({ accountId: details.session!.accountId, clientId });
    grant.addOIDCScope(String(details.params.scope));
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }

  return {
    issuer,
    clientId,
    clientSecret,
    redirectUri,
    signInAs(person) {
      next = person;
    },
    async browse(authorizationUrl) {
      const jar = new Map<string, string>();
      let current = authorizationUrl;
      for (let hop = 0; hop < 12; hop++) {
        if (current.startsWith(redirectUri)) return new URL(current).searchParams;
        const response = await fetch(current, {
          redirect: "manual",
          headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join("; ") },
        });
        for (const cookie of response.headers.getSetCookie()) {
          const [pair] = cookie.split(";");
          const at = pair!.indexOf("=");
          const name = pair!.slice(0, at);
          const value = pair!.slice(at + 1);
          if (value === "" || /expires=Thu, 01 Jan 1970/i.test(cookie)) jar.delete(name);
          else jar.set(name, value);
        }
        const location = response.headers.get("location");
        if (!location) throw new Error(`the provider stopped at ${current}: ${response.status} ${await response.text()}`);
        await response.arrayBuffer();
        current = new URL(location, current).href;
      }
      throw new Error("too many redirects");
    },
    async signIdToken(claims, opts = {}) {
      const signing = opts.key ?? key;
      const privateKey = await jose.importJWK(signing, "RS256");
      return new jose.SignJWT({ ...claims })
        .setProtectedHeader({ alg: "RS256", kid: signing.kid! })

        .setIssuer(opts.issuer ?? issuer)
        .setIssuedAt()
        .setExpirationTime(opts.expiresIn ?? "10m")
        .sign(privateKey);
    },
    async rotateKeys() {
      key = await newSigningKey();
      provider = build();
      return key;
    },
    jwksFetches: () => fetches,
    close: () => close(server),
  };
}

export interface TestAppleIdentity {
  issuer: string;
  clientId: string;
  teamId: string;
  keyId: string;
  /** The Sign in with Apple key (PKCS#8 PEM) the provider is configured with. */
  privateKeyPem: string;
  redirectUri: string;
  /**
   * Plays Apple's authorization screen: remembers who signs in for the authorization URL's state and returns the code.
   * `tamper` makes the ID token the code redeems wrong in one way (another nonce or audience, already expired).
   */
  authorize(
    authorizationUrl: string,
    person: TestPerson & { privateRelay?: boolean },
    tamper?: { nonce?: string; audience?: string; expired?: boolean },
  ): string;
  /** Every client secret the token endpoint received, with whether it verified. */
  clientSecrets: Array<{ jwt: string; valid: boolean; error?: string }>;
  close(): Promise<void>;
}

/**
 * A test double of Sign in with Apple: discovery, JWKS and a token endpoint
 * that accepts a code only with the PKCE verifier and a client secret that is
 * an ES256 JWT signed by the team's key (kid = key id, iss = team id,
 * sub = client id, aud = the issuer, not expired), as Apple requires.
 */
export async function startAppleDouble(options: { redirectUri?: string } = {}): Promise<TestAppleIdentity> {
  const teamId = randomBytes(5).toString("hex").toUpperCase();
  const keyId = randomBytes(5).toString("hex").toUpperCase();
  const clientId = "com.example.app.signin";
  const redirectUri = options.redirectUri ?? "https://app.example.test/apple/callback";
  const teamKeys = await jose.generateKeyPair("ES256", { extractable: true });
  const privateKeyPem = await jose.exportPKCS8(teamKeys.privateKey);
  const signing = await jose.generateKeyPair("RS256", { extractable: true });
  const signingJwk = { ...(await jose.exportJWK(signing.publicKey)), kid: "apple-1", alg: "RS256", use: "sig" };
  const codes = new Map<
    string,
    { person: TestPerson & { privateRelay?: boolean }; nonce: string; challenge: string; redirectUri: string; audience: string; expired: boolean }
  >();
  const clientSecrets: TestAppleIdentity["clientSecrets"] = [];

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  const { server, port } = await listen((req, res) => {
    const url = new URL(req.url ?? "/", issuer);
    if (url.pathname === "/.well-known/openid-configuration")
      return json(res, 200, {
        issuer,
        authorization_endpoint: `${issuer}/auth/authorize`,
        token_endpoint: `${issuer}/auth/token`,
        jwks_uri: `${issuer}/auth/keys`,
        response_types_supported: ["code"],
        response_modes_supported: ["query", "fragment", "form_post"],
        subject_types_supported: ["pairwise"],
        id_token_signing_alg_values_supported: ["RS256"],
        scopes_supported: ["openid", "email", "name"],
        token_endpoint_auth_methods_supported: ["client_secret_post"],
      });
    if (url.pathname === "/auth/keys") return json(res, 200, { keys: [signingJwk] });
    if (url.pathname === "/auth/token" && req.method === "POST") {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        token(new URLSearchParams(body))
          .then(([status, answer]) => json(res, status, answer))
          .catch((error: unknown) => json(res, 500, { error: String(error) }));
      });
      return;
    }
    json(res, 404, { error: "not_found" });
  });
  const issuer = `http://127.0.0.1:${port}`;

  async function token(form: URLSearchParams): Promise<[number, unknown]> {
    const secret = form.get("client_secret") ?? "";
    try {
      const { payload, protectedHeader } = await jose.jwtVerify(secret, teamKeys.publicKey, {
        algorithms: ["ES256"],
        issuer: teamId,
        subject: clientId,
        audience: issuer,
        requiredClaims: ["iat", "exp"],
      });
      if (protectedHeader.kid !== keyId) throw new Error(`kid ${protectedHeader.kid} is not the key id`);
      if ((payload.exp ?? 0) - (payload.iat ?? 0) > 15_777_000) throw new Error("lives longer than six months");
      clientSecrets.push({ jwt: secret, valid: true });
    } catch (error) {
      clientSecrets.push({ jwt: secret, valid: false, error: String(error) });
      return [400, { error: "invalid_client" }];
    }
    if (form.get("client_id") !== clientId || form.get("grant_type") !== "authorization_code") return [400, { error: "invalid_client" }];
    const grant = codes.get(form.get("code") ?? "");
    codes.delete(form.get("code") ?? "");
    if (!grant || grant.redirectUri !== form.get("redirect_uri")) return [400, { error: "invalid_grant" }];
    const verifier = form.get("code_verifier") ?? "";
    if (createHash("sha256").update(verifier).digest("base64url") !== grant.challenge) return [400, { error: "invalid_grant" }];
    const { person } = grant;
    const idToken = await new jose.SignJWT({
      nonce: grant.nonce,
      ...(person.email === undefined ? {} : { email: person.email, email_verified: "true", is_private_email: person.privateRelay ? "true" : "false" }),
    })
      .setProtectedHeader({ alg: "RS256", kid: "apple-1" })
      .setIssuer(issuer)
      .setAudience(grant.audience)
      .setSubject(person.sub)
      .setIssuedAt(grant.expired ? Math.floor(Date.now() / 1000) - 3600 : undefined)
      .setExpirationTime(grant.expired ? Math.floor(Date.now() / 1000) - 600 : "10m")
      .sign(signing.privateKey);
    return [200, { access_token: randomBytes(16).toString("hex"), token_type: "Bearer", expires_in: 3600, id_token: idToken }];
  }

  return {
    issuer,
    clientId,
    teamId,
    keyId,
    privateKeyPem,
    redirectUri,
    clientSecrets,
    authorize(authorizationUrl, person, tamper = {}) {
      const url = new URL(authorizationUrl);
      const code = randomBytes(16).toString("hex");
      codes.set(code, {
        person,
        audience: tamper.audience ?? clientId,
        expired: tamper.expired ?? false,
        nonce: tamper.nonce ?? url.searchParams.get("nonce") ?? "",
        challenge: url.searchParams.get("code_challenge") ?? "",
        redirectUri: url.searchParams.get("redirect_uri") ?? "",
      });
      return code;
    },
    close: () => close(server),
  };
}

/** Registers `google` as the tenant's GOOGLE provider through AdminService (as `bearer`, an admin); its provider id. */
export async function registerAsGoogle(api: Caller, google: TestOidcProvider, bearer: Record<string, string>): Promise<string> {
  const { provider } = await api.call(
    AdminService.method.createSocialProvider,
    {
      provider: {
        kind: SocialProviderKind.GOOGLE,
        name: "Google (test)",
        issuer: google.issuer,
        clientId: google.clientId,
        redirectUris: [google.redirectUri],
      },
      clientSecret: google.clientSecret,
    },
    bearer,
  );
  return provider!.id;
}

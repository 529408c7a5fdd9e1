// The OpenID Connect protocol with social providers, behind the domain's
// Federation port (src/domain/ports/federation.ts): discovery (cached per
// issuer), the authorization URL, code redemption with PKCE (oauth4webapi),
// ID token verification against the provider's JWKS (jose: keys cached, and
// fetched again when a token names an unknown kid), and Apple's client secret
// (an ES256 JWT signed with the team's key, renewed before it expires).
// Every request has a timeout; a provider that does not answer is
// unavailable PROVIDER_UNAVAILABLE, never a hang.
import * as jose from "jose";
import * as oauth from "oauth4webapi";
import { DomainError } from "../domain/errors.ts";
import type { ExternalIdentity, Federation, FederationProvider } from "../domain/ports/federation.ts";
import { isFetchableUrl, SocialProviderKind } from "../domain/social-providers.ts";

export interface OidcFederationOptions {
  /** Timeout of each request to a provider. */
  timeoutMs: number;
  /** Allow http issuers on loopback hosts (tests, development). */
  allowHttpLoopback: boolean;
  /** How long a discovery document is trusted. Default 1 h. */
  discoveryMaxAgeMs?: number;
  /** Least time between two JWKS fetches caused by an unknown kid. Default 30 s. */
  jwksCooldownMs?: number;
  /** Lifetime of Apple's client-secret JWT; renewed when a quarter of it is left. Default 1 h. */
  appleSecretLifetimeMs?: number;
  now?: () => number;
}

interface Server {
  as: oauth.AuthorizationServer;
  jwks: jose.JWTVerifyGetKey;
  fetchedAt: number;
}

const tokenInvalid = (cause?: unknown) =>
  new DomainError("unauthenticated", "SOCIAL_TOKEN_INVALID", "the identity provider's token failed verification", { cause });
const unavailable = (cause?: unknown) => new DomainError("unavailable", "PROVIDER_UNAVAILABLE", "the identity provider did not answer as expected", { cause });

/** True when the error is the network's or a timeout's, not the provider's verdict. */
function isTransportError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === "TimeoutError" || error.name === "AbortError") return true;
  if (error instanceof jose.errors.JWKSTimeout) return true;
  return error instanceof TypeError && /fetch failed|network/i.test(error.message);
}

export function createOidcFederation(options: OidcFederationOptions): Federation {
  const now = options.now ?? Date.now;
  const discoveryMaxAge = options.discoveryMaxAgeMs ?? 3_600_000;
  const appleLifetime = options.appleSecretLifetimeMs ?? 3_600_000;
  const servers = new Map<string, Server>();
  const pending = new Map<string, Promise<Server>>();
  const appleSecrets = new Map<string, { jwt: string; expiresAt: number; updatedAt: number }>();

  const insecure = (url: string) => options.allowHttpLoopback && url.startsWith("http:");
  const requestOptions = (url: string) => ({
    signal: AbortSignal.timeout(options.timeoutMs),
    ...(insecure(url) ? { [oauth.allowInsecureRequests]: true } : {}),
  });

  async function discover(issuer: string): Promise<Server> {
    if (!isFetchableUrl(issuer, options.allowHttpLoopback)) throw unavailable(new Error("issuer is not an https URL"));
    const issuerUrl = new URL(issuer);
    try {
      const response = await oauth.discoveryRequest(issuerUrl, { algorithm: "oidc", ...requestOptions(issuer) });
      const as = await oauth.processDiscoveryResponse(issuerUrl, response);
      if (!as.jwks_uri || !as.authorization_endpoint || !as.token_endpoint) throw new Error("discovery document lacks an endpoint");
      if (!isFetchableUrl(as.jwks_uri.split("?")[0]!, options.allowHttpLoopback)) throw new Error("jwks_uri is not an https URL");
      const jwks = jose.createRemoteJWKSet(new URL(as.jwks_uri), {
        timeoutDuration: options.timeoutMs,
        cooldownDuration: options.jwksCooldownMs ?? 30_000,
        cacheMaxAge: 10 * 60_000,
      });
      return { as, jwks, fetchedAt: now() };
    } catch (error) {
      throw unavailable(error);
    }
  }

  /** The issuer's metadata and keys, discovered once per discoveryMaxAge (one discovery at a time per issuer). */
  async function server(issuer: string): Promise<Server> {
    const cached = servers.get(issuer);
    if (cached && now() - cached.fetchedAt < discoveryMaxAge) return cached;
    let inflight = pending.get(issuer);
    if (!inflight) {
      inflight = discover(issuer).finally(() => pending.delete(issuer));
      pending.set(issuer, inflight);
    }
    const found = await inflight;
    servers.set(issuer, found);
    return found;
  }

  /** Apple's client secret: an ES256 JWT (iss team id, sub client id, aud Apple), reused until a quarter of its life is left. */
  async function appleClientSecret(provider: FederationProvider): Promise<string> {
    const apple = provider.apple;
    if (!apple) throw unavailable(new Error("Apple provider without its key"));
    const at = now();
    const cached = appleSecrets.get(provider.id);
    if (cached && cached.updatedAt === provider.updatedAt && cached.expiresAt - at > appleLifetime / 4) return cached.jwt;
    const key = await jose.importPKCS8(apple.privateKey, "ES256");
    const iat = Math.floor(at / 1000);
    const exp = iat + Math.floor(appleLifetime / 1000);
    const jwt = await new jose.SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid: apple.keyId })
      .setIssuer(apple.teamId)
      .setSubject(provider.clientId)
      .setAudience(provider.issuer)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(key);
    appleSecrets.set(provider.id, { jwt, expiresAt: exp * 1000, updatedAt: provider.updatedAt });
    return jwt;
  }

  async function clientAuth(provider: FederationProvider, as: oauth.AuthorizationServer): Promise<oauth.ClientAuth> {
    if (provider.kind === SocialProviderKind.APPLE) return oauth.ClientSecretPost(await appleClientSecret(provider));
    const methods = as.token_endpoint_auth_methods_supported ?? ["client_secret_basic"];
    return methods.includes("client_secret_basic") ? oauth.ClientSecretBasic(provider.clientSecret) : oauth.ClientSecretPost(provider.clientSecret);
  }

  /** Verifies the signature (the issuer's keys; an unknown kid fetches them again), issuer, audience, expiry and nonce. */
  async function verify(provider: FederationProvider, srv: Server, idToken: string, nonces: readonly string[]): Promise<ExternalIdentity> {
    let payload: jose.JWTPayload;
    try {
      ({ payload } = await jose.jwtVerify(idToken, srv.jwks, {
        issuer: srv.as.issuer,
        audience: provider.clientId,
        requiredClaims: ["sub", "exp", "iat"],
        clockTolerance: 30,
        currentDate: new Date(now()),
        algorithms: ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"],
      }));
    } catch (error) {
      if (isTransportError(error) || error instanceof jose.errors.JWKSInvalid) throw unavailable(error);
      throw tokenInvalid(error);
    }
    // Several audiences: the authorized party must be us (OpenID Connect Core 3.1.3.7).
    if (Array.isArray(payload.aud) && payload.aud.length > 1 && payload.azp !== provider.clientId) throw tokenInvalid();
    if (typeof payload.nonce !== "string" || !nonces.includes(payload.nonce)) throw tokenInvalid();
    if (typeof payload.sub !== "string" || payload.sub.length === 0 || payload.sub.length > 255) throw tokenInvalid();
    const claim = (name: string) => (typeof payload[name] === "string" ? (payload[name] as string) : "");
    const flag = (name: string) => payload[name] === true || payload[name] === "true";
    return {
      issuer: srv.as.issuer,
      subject: payload.sub,
      email: claim("email").slice(0, 320),
      emailVerified: flag("email_verified"),
      privateRelayEmail: flag("is_private_email"),
      name: claim("name").slice(0, 200),
      expiresAt: (payload.exp ?? 0) * 1000,
    };
  }

  return {
    async authorizationUrl(provider, request) {
      const { as } = await server(provider.issuer);
      const url = new URL(as.authorization_endpoint!);
      url.searchParams.set("client_id", provider.clientId);
      url.searchParams.set("redirect_uri", request.redirectUri);
      url.searchParams.set("response_type", "code");
      url.searchParams.set("scope", request.scopes.join(" "));
      url.searchParams.set("state", request.state);
      url.searchParams.set("nonce", request.nonce);
      url.searchParams.set("code_challenge", request.codeChallenge);
      url.searchParams.set("code_challenge_method", "S256");
      // Apple sends the name and email only to a form_post redirect.
      if (provider.kind === SocialProviderKind.APPLE) url.searchParams.set("response_mode", "form_post");
      return url.href;
    },

    async redeemCode(provider, request) {
      const srv = await server(provider.issuer);
      const client: oauth.Client = { client_id: provider.clientId };
      let idToken: string;
      try {
        // The state was checked (and used up) by the caller; the iss, when the provider sends one, is its own.
        const params = oauth.validateAuthResponse(
          srv.as,
          client,
          new URLSearchParams({ code: request.code, ...(srv.as.authorization_response_iss_parameter_supported ? { iss: srv.as.issuer } : {}) }),
          oauth.skipStateCheck,
        );
        const response = await oauth.authorizationCodeGrantRequest(
          srv.as,
          client,
          await clientAuth(provider, srv.as),
          params,
          request.redirectUri,
          request.codeVerifier,
          requestOptions(provider.issuer),
        );
        const result = await oauth.processAuthorizationCodeResponse(srv.as, client, response, { expectedNonce: request.nonce, requireIdToken: true });
        idToken = result.id_token!;
      } catch (error) {
        if (isTransportError(error)) throw unavailable(error);
        if (error instanceof oauth.ResponseBodyError || error instanceof oauth.AuthorizationResponseError)
          throw new DomainError("unauthenticated", "SOCIAL_CODE_INVALID", "the identity provider refused the code", { cause: error });
        if (error instanceof oauth.OperationProcessingError && error.code === oauth.RESPONSE_IS_NOT_JSON) throw unavailable(error);
        if (error instanceof oauth.OperationProcessingError) throw tokenInvalid(error);
        throw unavailable(error);
      }
      return verify(provider, srv, idToken, [request.nonce]);
    },

    async verifyIdToken(provider, request) {
      const srv = await server(provider.issuer);
      return verify(provider, srv, request.idToken, request.nonces);
    },
  };
}

// What social sign-in needs from the outside: the OpenID Connect protocol with
// a provider (discovery, authorization URL, code redemption, ID token
// verification against its published keys). Implemented in src/federation/.
//
// Errors: unauthenticated SOCIAL_CODE_INVALID (the provider refused the code),
// SOCIAL_TOKEN_INVALID (an ID token failed a check: signature, issuer,
// audience, expiry, nonce); unavailable PROVIDER_UNAVAILABLE (the provider did
// not answer in time, or answered nonsense).

/** A provider as the protocol needs it (secrets opened). */
export interface FederationProvider {
  id: string;
  /** SocialProviderKind: APPLE signs its client secret and asks for form_post. */
  kind: number;
  issuer: string;
  clientId: string;
  /** The client secret (GOOGLE, OIDC); "" for APPLE. */
  clientSecret: string;
  /** APPLE: what signs the ES256 client-secret JWT. */
  apple?: { teamId: string; keyId: string; privateKey: string };
  /** When its settings last changed: cached clients and secrets older than it are dropped. */
  updatedAt: number;
}

/** Who the provider says signed in: verified claims of an ID token. */
export interface ExternalIdentity {
  issuer: string;
  subject: string;
  /** "" when the token carries none. */
  email: string;
  emailVerified: boolean;
  /** Apple's private-relay address (is_private_email). */
  privateRelayEmail: boolean;
  /** "" when the token carries none. */
  name: string;
  /** The ID token's expiry (its exp claim), epoch milliseconds. */
  expiresAt: number;
}

export interface Federation {
  /** The provider's authorization URL for a code flow with PKCE (S256), state and nonce. */
  authorizationUrl(
    provider: FederationProvider,
    request: { redirectUri: string; scopes: readonly string[]; state: string; nonce: string; codeChallenge: string },
  ): Promise<string>;
  /** Redeems an authorization code and verifies the ID token it brings (nonce included). */
  redeemCode(provider: FederationProvider, request: { code: string; redirectUri: string; codeVerifier: string; nonce: string }): Promise<ExternalIdentity>;
  /** Verifies an ID token a native SDK obtained; `nonces` are the accepted values of its nonce claim. */
  verifyIdToken(provider: FederationProvider, request: { idToken: string; nonces: readonly string[] }): Promise<ExternalIdentity>;
}

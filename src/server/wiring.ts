// Wires everything once: stores, keys, domain, delivery. Nothing else
// constructs these; tests build a runtime through the same function.
import { randomBytes, randomUUID } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, hostname } from "node:os";
import { join } from "node:path";
import type { Config } from "../config.ts";
import { createKeyring, type Keyring } from "../crypto/keyring.ts";
import { createPasswordHasher, type PasswordHasher } from "../crypto/passwords.ts";
import { systemRandom } from "../crypto/random.ts";
import { createLogTransport, createSmtpTransport } from "../delivery/mail-transport.ts";
import { createOutboxWorker, DeliveryError, type OutboxWorker } from "../delivery/outbox-worker.ts";
import { createLogSmsSender, createTwilioSmsSender, createWebhookSmsSender, disabledSmsSender, unconfiguredSmsSender } from "../delivery/sms-sender.ts";
import type { MailTransport, SmsSender } from "../delivery/types.ts";
import { createWebhookWorker, WebhookDeliveryError, type WebhookWorker } from "../delivery/webhook-worker.ts";
import type { RetryPolicy } from "../delivery/retry.ts";
import { newId } from "../domain/ids.ts";
import { createWebhooks, webhookSecretContext } from "../domain/webhooks.ts";
import { createBlockingHooks, identityKindOfMethods } from "../domain/hooks.ts";
import { createMessageTemplates } from "../domain/message-templates.ts";
import { createMessageRenderer } from "../delivery/templates.ts";
import { createHookCaller } from "../delivery/hook-caller.ts";
import { createGuardedPost, type Resolver } from "../delivery/guarded-http.ts";
import { createAccounts } from "../domain/accounts.ts";
import { createAdminUsers } from "../domain/admin-users.ts";
import { createAssistedRecovery } from "../domain/assisted-recovery.ts";
import { createApiKeys } from "../domain/api-keys.ts";
import { createAudit } from "../domain/audit.ts";
import { createBootstrap, type Bootstrap } from "../domain/bootstrap.ts";
import { createConsents } from "../domain/consents.ts";
import { createDataExport } from "../domain/data-export.ts";
import { createEmailChange } from "../domain/email-change.ts";
import { createErasure } from "../domain/erasure.ts";
import { createFailedMessages } from "../domain/failed-messages.ts";
import { type MessageKind, messageChannel } from "../domain/messages.ts";
import { createIdentityFlows } from "../domain/identity.ts";
import { createPhoneIdentities } from "../domain/phone-identities.ts";
import { createLimits } from "../domain/limits.ts";
import { createProfiles } from "../domain/profile.ts";
import type { Random } from "../domain/ports/random.ts";
import type { DurableStores, EphemeralStores } from "../domain/ports/stores.ts";
import { createAddressRequests } from "../domain/address-requests.ts";
import { createRecoveryFlows, passwordFingerprint } from "../domain/recovery.ts";
import { createRetention, startRetention, type Retention } from "../domain/retention.ts";
import { type AccessTokenOptions, createAccessTokens } from "../domain/access-tokens.ts";
import { createRevocationFeed } from "../domain/revocation-feed.ts";
import { createRevocations, startRevocationLoop, type Revocations } from "../domain/revocations.ts";
import { createPasskeys } from "../domain/passkeys.ts";
import { createSecondFactors } from "../domain/second-factors.ts";
import { createSessions, type SessionCacheOptions } from "../domain/sessions.ts";
import { createSubscriptionCache, createSubscriptionJob, createSubscriptions, type SubscriptionRun } from "../domain/subscriptions.ts";
import { createTenants } from "../domain/tenants.ts";
import { createSocialProviders } from "../domain/social-providers.ts";
import { createSocialSignIn } from "../domain/social-sign-in.ts";
import { createOidcFederation } from "../federation/oidc.ts";
import { createMemoryStores } from "../store/memory/stores.ts";
import { createRedisStores } from "../store/redis/stores.ts";
import type { App } from "../services/app.ts";
import { openServingDurable } from "./durable.ts";
import type { Logger } from "./logger.ts";
import { createReadiness, type Readiness } from "./readiness.ts";
import { createDeliveryMetrics } from "../delivery/metrics.ts";
import type { Metric } from "prom-client";
import type { Tracer } from "@opentelemetry/api";
import { tracedHasher, tracedStores } from "./tracing.ts";

export interface Runtime {
  app: App;
  /** Creating the first super admin (src/cli/admin.ts). */
  bootstrap: Bootstrap;
  durable: DurableStores;
  ephemeral: EphemeralStores;
  outboxWorker: OutboxWorker;
  /** Numbers domain events and delivers them to webhooks (src/delivery/webhook-worker.ts). */
  webhookWorker: WebhookWorker;
  /** Metrics of the runtime's own work (delivery), for the HTTP server's /metrics. */
  metrics: Metric[];
  /** Retention (src/domain/retention.ts): run by a background job; tests call run() with their clock. */
  retention: Retention;
  /** The subscription job (src/domain/subscriptions.ts): run with retention, under its lease; tests call run() with their clock. */
  subscriptionJob: { run(at: number): Promise<SubscriptionRun> };
  /** Pending session revocations (src/domain/revocations.ts): drained by a background loop. */
  revocations: Revocations;
  /** True when every backend answers (bounded: READY_TIMEOUT_MS). */
  ready(): Promise<boolean>;
  /** The backends' state; `watch()` logs their changes (the serving process starts it). */
  readiness: Readiness;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  now?: () => number;
  /** Overrides of the access tokens' options (tests shorten the new key's publication lead). */
  accessTokens?: Partial<AccessTokenOptions>;
  /** Replaces argon2 (the fast test tier injects a cheap hasher; production always hashes with argon2). */
  passwords?: PasswordHasher;
  /** Where tokens, codes and ids draw their randomness (default: the CSPRNG); tests pass a seeded one. */
  random?: Random;
  /** Overrides the mail transport built from SMTP_URL (tests). */
  mailTransport?: MailTransport;
  /** Overrides the SMS sender built from SMS_PROVIDER and its variables (tests). */
  smsSender?: SmsSender;
  sessionCache?: SessionCacheOptions;
  /** Run migrations and the erasure-ledger replay on open (the default); a cluster's workers skip them after the primary ran them. */
  migrate?: boolean;
  /** Start the outbox worker loop (default true). */
  deliver?: boolean;
  /** Webhook retries (default: 30 s doubling to 1 h, for a day); tests shorten them. */
  webhookRetry?: RetryPolicy;
  /** How webhooks and blocking hooks resolve host names (default: the system's; tests play DNS with it). */
  webhookResolver?: Resolver;
  /** How often the webhook worker looks for new events and due deliveries (default 1 s). */
  webhookPollMs?: number;
  /** How long one webhook POST may take (default 10 s). */
  webhookTimeoutMs?: number;
  /**
   * How often retention runs — expired unverified sign-ups, delivered messages, old
   * audit events (default 15 minutes; 0: never, tests call runtime.retention.run).
   */
  purgeIntervalMs?: number;
  /**
   * How often every instance reads the pending revocations, refuses the sessions they
   * name and retries carrying them out (default 1 s; 0: never, tests call runtime.revocations.drain).
   */
  revocationIntervalMs?: number;
  /** Traces every store and argon2 call as a child span of the active one (src/server/tracing.ts); off when undefined. */
  tracer?: Tracer;
  /** Least time between two fetches of a social provider's keys on an unknown kid (default 30 s; tests rotate keys faster). */
  jwksCooldownMs?: number;
  /** Wraps the ephemeral stores once built (tests inject session-store faults). */
  wrapEphemeral?: (stores: EphemeralStores) => EphemeralStores;
}

/**
 * Production without SMTP_URL (operator commands, which never deliver; the service
 * refuses to start so, see assertServable): a message stays queued, never logged.
 */
const noMailTransport: MailTransport = {
  async send() {
    throw new Error("SMTP_URL is not set: messages cannot be sent");
  },
  async close() {},
};

/**
 * The SMS sender of the configured provider. Without one, development mode logs
 * the text (codes included); production keeps SMS queued, never logged (the
 * service refuses to start so; operator commands build a runtime anyway).
 */
function smsSenderFor(config: Config, log: Logger): SmsSender {
  const sms = config.sms;
  if (sms?.provider === "webhook") return createWebhookSmsSender({ url: sms.url, secret: sms.secret });
  if (sms?.provider === "twilio") {
    return createTwilioSmsSender({
      accountSid: sms.accountSid,
      authToken: sms.authToken,
      apiUrl: sms.apiUrl,
      ...(sms.from !== undefined ? { from: sms.from } : {}),
      ...(sms.messagingServiceSid !== undefined ? { messagingServiceSid: sms.messagingServiceSid } : {}),
    });
  }
  if (sms?.provider === "none") return disabledSmsSender;
  return config.development ? createLogSmsSender((line, fields) => log.info({ sms: fields }, line)) : unconfiguredSmsSender;
}

/** Development keys for the embedded mode, generated once and kept in the data directory. */
function developmentKeys(dataDir: string): { kek: Buffer; blind: Buffer } {
  const path = join(dataDir, "dev-keys.json");
  if (!existsSync(path)) {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(path, JSON.stringify({ kek: randomBytes(32).toString("base64"), blind: randomBytes(32).toString("base64") }), { mode: 0o600 });
  }
  chmodSync(path, 0o600);
  const keys = JSON.parse(readFileSync(path, "utf8")) as { kek: string; blind: string };
  return { kek: Buffer.from(keys.kek, "base64"), blind: Buffer.from(keys.blind, "base64") };
}

/** The keyring from KEY_ENCRYPTION_KEYS and BLIND_INDEX_KEY, else development keys kept in the data directory. */
export function keyringFor(config: Config): Keyring {
  if (config.keyEncryptionKeys && config.blindIndexKey) return createKeyring(config.keyEncryptionKeys, config.blindIndexKey);
  const dev = developmentKeys(config.dataDir);
  return createKeyring(config.keyEncryptionKeys ?? [{ id: "dev", key: dev.kek }], config.blindIndexKey ?? dev.blind);
}

export async function createRuntime(config: Config, log: Logger, options: RuntimeOptions = {}): Promise<Runtime> {
  const now = options.now ?? Date.now;
  const random = options.random ?? systemRandom;
  const embedded = config.mysqlUrl === undefined;
  const opened = await openServingDurable(config, log, { prepare: options.migrate !== false });
  const durable = options.tracer ? tracedStores(opened, embedded ? "sqlite" : "mysql", options.tracer) : opened;
  const redisTarget = config.redisClusterNodes ? { clusterNodes: config.redisClusterNodes } : config.redisUrl;
  const built = redisTarget
    ? createRedisStores(redisTarget, {
        now,
        keyPrefix: config.redisKeyPrefix,
        tlsCa: config.redisTlsCaFile ? readFileSync(config.redisTlsCaFile, "utf8") : undefined,
        connectTimeoutMs: config.timeouts.redisConnectMs,
        commandTimeoutMs: config.timeouts.redisCommandMs,
      })
    : createMemoryStores({ now });
  const wrapped = options.wrapEphemeral ? options.wrapEphemeral(built) : built;
  const ephemeral = options.tracer ? tracedStores(wrapped, redisTarget ? "redis" : "memory", options.tracer) : wrapped;
  const readiness = createReadiness(
    embedded
      ? [{ name: "database", variable: "DATA_DIR", ping: () => durable.ping() }]
      : [
          { name: "mysql", variable: config.keystoreMysqlUrl ? "MYSQL_URL, KEYSTORE_MYSQL_URL" : "MYSQL_URL", ping: () => durable.ping() },
          { name: "redis", variable: config.redisClusterNodes ? "REDIS_CLUSTER_NODES" : "REDIS_URL", ping: () => ephemeral.ping() },
        ],
    log,
  );
  const keyring = keyringFor(config);
  const tenants = createTenants(durable.tenants, now, ephemeral.invalidation, random);
  await tenants.listen();
  await tenants.ensureDefault(now());

  // Webhooks and blocking hooks: https and public addresses only, outside development mode (SSRF).
  const endpoints = { allowHttp: config.development, allowPrivateNetworks: config.development || config.webhookAllowPrivateNetworks };
  const guardedPost = createGuardedPost({
    allowPrivateNetworks: endpoints.allowPrivateNetworks,
    ...(options.webhookResolver ? { resolver: options.webhookResolver } : {}),
  });
  const hooks = createBlockingHooks({
    store: durable.hooks,
    caller: createHookCaller(guardedPost),
    keyring,
    tenants,
    invalidation: ephemeral.invalidation,
    endpoints,
    now,
    random,
    onFailure: (failure) => log.warn({ hook: failure }, `blocking hook failed; ${failure.failOpen ? "let through (fail open)" : "refused (fail closed)"}`),
  });
  await hooks.listen();
  const sessions = createSessions({
    store: ephemeral.sessions,
    invalidation: ephemeral.invalidation,
    now,
    random,
    ...(options.sessionCache ? { cache: options.sessionCache } : {}),
    // Only listing sessions opens where they were opened (validation never does).
    dataKey: async (tenantId, accountId) => {
      const found = await durable.accounts.getAccount(tenantId, accountId);
      return found && keyring.unwrapDataKey(found.account.id, found.wrappedKey);
    },
    events: durable.events,
    beforeIssue: (account, meta, methods) =>
      hooks.check("before_session", { tenantId: account.tenantId, accountId: account.id, identityKind: identityKindOfMethods(methods), meta }),
  });
  await sessions.listen();
  const revocationFeed = createRevocationFeed(ephemeral.invalidation);
  await revocationFeed.listen();
  const subscriptionCache = createSubscriptionCache({
    accounts: durable.accounts,
    invalidation: ephemeral.invalidation,
    now,
    ...(options.sessionCache?.maxEntries !== undefined && { maxEntries: options.sessionCache.maxEntries }),
    ...(options.sessionCache?.maxAgeMs !== undefined && { maxAgeMs: options.sessionCache.maxAgeMs }),
  });
  await subscriptionCache.listen();
  const revocations = createRevocations({
    store: durable.revocations,
    // What this instance refuses while a revocation is pending, validators in other processes refuse too.
    sessions: {
      endWhere: (accountId, which) => sessions.endWhere(accountId, which),
      refuseRevoked(pending) {
        sessions.refuseRevoked(pending);
        revocationFeed.pending(pending);
      },
    },
    now,
    onDeferred: (err) => log.warn({ err }, "sessions of a committed change could not be ended yet: refused meanwhile, retried until done"),
  });
  const revocationIntervalMs = options.revocationIntervalMs ?? 1000;
  const revocationLoop =
    revocationIntervalMs > 0
      ? startRevocationLoop(revocations, { intervalMs: revocationIntervalMs, onError: (err) => log.warn({ err }, "pending revocations could not be read") })
      : undefined;
  const apiKeys = createApiKeys({ store: durable.apiKeys, invalidation: ephemeral.invalidation, now, random });
  await apiKeys.listen();
  // Each worker hashes at most one computation per core at once (see passwords.ts),
  // not its share of the cores: connections do not spread evenly over workers (the
  // bench saw one worker take nearly all sign-ins), and a worker capped at its share
  // would leave the other cores idle.
  const hasher = options.passwords ?? createPasswordHasher(config.passwordPepper, { maxConcurrent: availableParallelism() });
  const passwords = options.tracer ? tracedHasher(hasher, options.tracer) : hasher;
  const accounts = createAccounts({ accounts: durable.accounts, keyring });
  const audit = createAudit(durable.audit, now);
  const consents = createConsents({ store: durable.consents, now, random });

  // Messages carry live links and codes: only development mode may write them to the log.
  const transport =
    options.mailTransport ??
    (config.smtpUrl
      ? createSmtpTransport(config.smtpUrl, config.mailFrom)
      : config.development
        ? createLogTransport((line, fields) => log.info({ mail: fields }, line))
        : noMailTransport);
  const smsSender = options.smsSender ?? smsSenderFor(config, log);
  const smsLogged = config.sms === undefined;
  if (embedded) {
    // One warning, naming everything that makes this a development setup.
    log.warn(
      { dataDir: config.dataDir, mail: config.smtpUrl ? "smtp" : "log", sms: config.sms?.provider ?? "log" },
      "DEVELOPMENT MODE: embedded SQLite database and in-process session store" +
        (config.keyEncryptionKeys ? "" : ", generated keys in the data directory") +
        (config.smtpUrl ? "" : ", messages written to this log") +
        (smsLogged ? ", SMS (phone codes) written to this log" : "") +
        ". Set MYSQL_URL, REDIS_URL, KEY_ENCRYPTION_KEYS, BLIND_INDEX_KEY, SMTP_URL and an SMS provider in production.",
    );
  } else if (config.development) {
    log.warn(
      `DEVELOPMENT MODE (DEVELOPMENT_MODE=true) with MYSQL_URL and REDIS_URL${config.smtpUrl ? "" : ": SMTP_URL is not set, messages are written to this log instead of being sent"}${smsLogged ? "; no SMS provider is set, SMS (phone codes) are written to this log" : ""}`,
    );
  }
  const deliveryMetrics = createDeliveryMetrics(
    () => durable.outbox.countByStatus(),
    (err) => log.warn({ err }, "outbox depth could not be read for /metrics"),
  );
  // Before the worker, which opens its rows (it may start delivering at once).
  const addressRequests = createAddressRequests(
    {
      accounts: durable.accounts,
      tenants,
      keyring,
      tokens: ephemeral.tokens,
      outbox: durable.outbox,
      now,
      random,
      publicUrl: config.publicUrl,
      verificationLinkTtlMs: config.verificationLinkTtlMs,
      onMessageQueued: () => outboxWorker.nudge(),
    },
    passwordFingerprint,
  );
  const templates = createMessageTemplates({ store: durable.templates, tenants, renderer: createMessageRenderer({ productName: "Identity" }), now });
  const outboxWorker = createOutboxWorker({
    outbox: durable.outbox,
    // Reset and resend requests become their message here, decoys nothing (src/domain/address-requests.ts).
    openPayload: (message) => addressRequests.open(message, (m) => accounts.openMessage(m)),
    transport,
    sms: smsSender,
    productName: "Identity",
    tenantTemplate: (message, payload) => templates.find(message.tenantId, payload.kind, payload.locale),
    now,
    owner: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    retry: config.outboxRetry,
    onAttempt: (outcome) => deliveryMetrics.attempt(outcome),
    onError: (error, message) => {
      // A failed attempt is logged by its codes only: the SMTP server's or SMS provider's text names the recipient.
      if (error instanceof DeliveryError) {
        const { failure, attempt, nextAttemptAt } = error;
        // "errorCode": the failure's code (ESOCKET, TWILIO…), named apart from the failure class.
        const { code: errorCode, ...rest } = failure;
        const fields = {
          delivery: { ...rest, errorCode, attempt, retryAt: nextAttemptAt === null ? null : new Date(nextAttemptAt).toISOString() },
          messageId: message?.id,
          kind: message?.kind,
          channel: message ? messageChannel(message.kind as MessageKind) : undefined,
        };
        if (nextAttemptAt === null) log.warn(fields, "message given up (failed): requeue it with `npm run outbox -- requeue`");
        else log.info(fields, "message delivery failed; retrying later");
        return;
      }
      log.warn({ err: error, messageId: message?.id, kind: message?.kind }, "outbox pass failed");
    },
  });
  if (options.deliver !== false) outboxWorker.start();
  const webhookWorker = createWebhookWorker({
    events: durable.events,
    webhooks: durable.webhooks,
    leases: ephemeral.leases,
    post: guardedPost,
    openSecret: (webhookId, sealed) => keyring.openSecret(webhookSecretContext(webhookId), sealed).toString("utf8"),
    now,
    owner: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    newId: () => newId(now(), random),
    ...(options.webhookRetry ? { retry: options.webhookRetry } : {}),
    ...(options.webhookPollMs ? { pollIntervalMs: options.webhookPollMs } : {}),
    ...(options.webhookTimeoutMs ? { timeoutMs: options.webhookTimeoutMs } : {}),
    onError: (error, delivery) => {
      // Codes only: an endpoint's answer is not logged.
      if (error instanceof WebhookDeliveryError) {
        const fields = {
          webhookId: delivery?.webhookId,
          deliveryId: delivery?.id,
          eventType: delivery?.eventType,
          code: error.code,
          retryAt: error.nextAttemptAt,
        };
        if (error.nextAttemptAt === null) log.warn(fields, "webhook delivery given up (failed): requeue it with AdminService/RequeueWebhookDelivery");
        else log.info(fields, "webhook delivery failed; retrying later");
        return;
      }
      log.warn({ err: error, deliveryId: delivery?.id }, "webhook pass failed");
    },
  });
  if (options.deliver !== false) webhookWorker.start();
  const webhooks = createWebhooks({
    webhooks: durable.webhooks,
    events: durable.events,
    tenants,
    keyring,
    endpoints,
    now,
    random,
  });
  const failedMessages = createFailedMessages({ outbox: durable.outbox, now, onRequeued: () => outboxWorker.nudge() });

  const limits = createLimits(ephemeral.rateLimiter);
  // What every flow that queues messages and issues one-time tokens shares.
  const messaging = {
    outbox: durable.outbox,
    tokens: ephemeral.tokens,
    onMessageQueued: () => outboxWorker.nudge(),
  };
  const links = { ...messaging, keyring, now, random, publicUrl: config.publicUrl, verificationLinkTtlMs: config.verificationLinkTtlMs };
  // SMS_PROVIDER=none: the flows refuse to queue codes nobody would deliver.
  const smsEnabled = config.sms?.provider !== "none";
  const passkeys = createPasskeys({
    ...messaging,
    store: durable.secondFactors,
    accounts: durable.accounts,
    tenants,
    keyring,
    tokens: ephemeral.tokens,
    sessions,
    limits,
    now,
    random,
    publicUrl: config.publicUrl,
    audit,
  });
  const secondFactors = createSecondFactors({
    ...messaging,
    smsEnabled,
    passkeys,
    codes: ephemeral.codes,
    store: durable.secondFactors,
    accounts: durable.accounts,
    tenants,
    keyring,
    tokens: ephemeral.tokens,
    sessions,
    limits,
    audit,
    now,
    random,
  });
  const identity = createIdentityFlows({
    ...links,
    accounts: durable.accounts,
    tenants,
    passwords,
    sessions,
    limits,
    audit,
    addressRequests,
    secondFactors,
    subscriptionCache,
    hooks,
  });
  const phones = createPhoneIdentities({
    ...messaging,
    smsEnabled,
    accounts: durable.accounts,
    codes: ephemeral.codes,
    addressRequests,
    tenants,
    keyring,
    sessions,
    secondFactors,
    subscriptionCache,
    limits,
    now,
    random,
    audit,
    hooks,
  });
  const recovery = createRecoveryFlows({ ...links, accounts: durable.accounts, tenants, passwords, revocations, limits, addressRequests, subscriptionCache });
  const profiles = createProfiles({ accounts: durable.accounts, keyring, tenants, now });
  const erasure = createErasure({ accounts: durable.accounts, keys: durable.keys, revocations, audit, now, tenants, keyring, passwords, limits });
  const users = createAdminUsers({ ...links, accounts: durable.accounts, tenants, passwords, sessions, revocations, limits, recovery, profiles, erasure });
  const assistedRecovery = createAssistedRecovery({
    ...links,
    accounts: durable.accounts,
    tenants,
    passwords,
    limits,
    revocations,
    secondFactors: durable.secondFactors,
  });
  const emailChange = createEmailChange({ ...messaging, accounts: durable.accounts, tenants, keyring, limits, now, random });
  const socialProviders = createSocialProviders({
    store: durable.socialProviders,
    keyring,
    now,
    random,
    allowHttpLoopback: config.socialAllowHttpLoopback,
  });
  const federation = createOidcFederation({
    timeoutMs: config.timeouts.socialProviderMs,
    allowHttpLoopback: config.socialAllowHttpLoopback,
    ...(options.jwksCooldownMs === undefined ? {} : { jwksCooldownMs: options.jwksCooldownMs }),
    now,
  });
  const social = createSocialSignIn({
    providers: socialProviders,
    federation,
    tokens: ephemeral.tokens,
    accounts: durable.accounts,
    tenants,
    keyring,
    sessions,
    secondFactors,
    limits,
    leases: ephemeral.leases,
    audit,
    now,
    random,
    hooks,
  });
  const dataExport = createDataExport({
    accounts: durable.accounts,
    keyring,
    sessions,
    secondFactors,
    consents,
    outbox: durable.outbox,
    events: durable.events,
    audit: durable.audit,
    now,
  });
  const subscriptions = createSubscriptions({ accounts: durable.accounts, tenants, cache: subscriptionCache, keyring, now });
  const subscriptionJob = createSubscriptionJob({
    tenants: durable.tenants,
    accounts: durable.accounts,
    keyring,
    audit,
    cache: subscriptionCache,
    random,
    onMessageQueued: () => outboxWorker.nudge(),
  });
  const purgeIntervalMs = options.purgeIntervalMs ?? 15 * 60_000;
  const retention = createRetention({
    tenants: durable.tenants,
    accounts: durable.accounts,
    outbox: durable.outbox,
    audit: durable.audit,
    events: durable.events,
    eventRetentionMs: config.eventRetentionMs,
  });
  // One background job under retention's lease: retention, then the subscriptions' dates.
  const background = {
    async run(at: number) {
      const deleted = await retention.run(at);
      const subscriptionsRun = await subscriptionJob.run(at);
      if (subscriptionsRun.expired + subscriptionsRun.reminded > 0) log.info({ subscriptions: subscriptionsRun }, "subscriptions: ended periods and reminders");
      return deleted;
    },
  };
  const purge =
    purgeIntervalMs > 0
      ? startRetention(background, {
          intervalMs: purgeIntervalMs,
          now,
          lease: ephemeral.leases,
          onRun: (deleted) => {
            if (deleted.unverifiedAccounts + deleted.guestAccounts + deleted.deliveredMessages + deleted.auditEvents > 0)
              log.info({ deleted }, "retention: deleted what is past its tenant's retention");
          },
          onError: (err) => log.warn({ err }, "retention run failed"),
        })
      : undefined;

  return {
    app: {
      identity,
      phones,
      recovery,
      emailChange,
      sessions,
      subscriptionCache,
      subscriptions,
      accounts,
      profiles,
      tenants,
      apiKeys,
      audit,
      consents,
      dataExport,
      erasure,
      users,
      assistedRecovery,
      failedMessages,
      socialProviders,
      social,
      revocations,
      revocationFeed,
      accessTokens: createAccessTokens({
        store: durable.signingKeys,
        keyring,
        now,
        options: {
          issuer: config.accessTokenIssuer,
          ttlMs: config.accessTokenTtlMs,
          rotationMs: config.signingKeyRotationMs,
          publishLeadMs: 60_000,
          ...options.accessTokens,
        },
      }),
      secondFactors,
      webhooks,
      hooks,
      templates,
      passkeys,
    },
    bootstrap: createBootstrap({ accounts: durable.accounts, tenants, keyring, passwords, revocations, now, random }),
    durable,
    ephemeral,
    outboxWorker,
    webhookWorker,
    metrics: deliveryMetrics.metrics,
    retention,
    subscriptionJob,
    revocations,
    ready: () => readiness.ready(),
    readiness,
    async close() {
      readiness.close();
      await purge?.stop();
      await revocationLoop?.stop();
      await outboxWorker.stop();
      await webhookWorker.stop();
      await transport.close();
      await smsSender.close();
      await ephemeral.close();
      await durable.close();
    },
  };
}

// How the Redis store writes a session: a compact array holding the sealed
// client (never the IP address or user agent in clear), under 512 bytes even
// with the longest values kept; a record written before (an object with the
// client in clear) still reads, without its client.
import { describe, expect, it } from "vitest";
import { sealSessionClient, SESSION_USER_AGENT_MAX } from "../../src/domain/sessions.ts";
import { AssuranceLevel, Role, type SessionRecord } from "../../src/domain/types.ts";
import { decodeSession, encodeSession } from "../../src/store/redis/stores.ts";

const KEY = Buffer.alloc(32, 3);
const ACCOUNT = "0191f0b2-7a4c-7c3e-9d1a-3b5f2c1e4a77";

describe("Redis session encoding", () => {
  it("round-trips a session, under 512 bytes with a 64-character tenant, an IPv6 address and the longest user agent", () => {
    const at = Date.UTC(2026, 10, 30);
    const sessionId = "0191f0b2-7a4c-7c3e-9d1a-3b5f2c1e4a78";
    const session: SessionRecord = {
      sessionId,
      accountId: ACCOUNT,
      tenantId: "t".repeat(64),
      role: Role.SUPER_ADMIN,
      assurance: AssuranceLevel.AAL2,
      createdAt: at,
      lastSeenAt: at,
      expiresAt: at + 86_400_000,
      absoluteExpiresAt: at + 30 * 86_400_000,
      client: sealSessionClient(KEY, sessionId, { ip: "2001:0db8:85a3:0000:0000:8a2e:0370:7334", userAgent: "M".repeat(1000) }),
      // A first factor about an identity, and a second factor after a minute.
      methods: [
        { method: "phone_code", identityId: "0191f0b2-7a4c-7c3e-9d1a-3b5f2c1e4a79", at },
        { method: "totp", identityId: "", at: at + 60_000 },
      ],
    };
    const raw = encodeSession(session);
    expect(Buffer.byteLength(raw)).toBeLessThan(512);
    expect(raw).not.toContain("2001:0db8");
    expect(raw).not.toContain("M".repeat(SESSION_USER_AGENT_MAX));
    expect(decodeSession(ACCOUNT, raw)).toEqual(session);
    // Second factors are stored as codes too; a record that named them reads the same.
    expect(raw).not.toContain('"totp"');
    expect(decodeSession(ACCOUNT, raw.replace(/\[5,"",60000\]/, '["totp","",60000]'))).toEqual(session);
  });

  it("reads a record written as an object before, dropping its client that was in clear", () => {
    const old = {
      sessionId: "s",
      accountId: ACCOUNT,
      tenantId: "default",
      role: Role.USER,
      assurance: AssuranceLevel.AAL1,
      createdAt: 1,
      lastSeenAt: 1,
      expiresAt: 2,
      absoluteExpiresAt: 3,
      userAgent: "UA",
      ip: "203.0.113.9",
    };
    const decoded = decodeSession(ACCOUNT, JSON.stringify(old));
    expect(decoded).toEqual({
      sessionId: "s",
      accountId: ACCOUNT,
      tenantId: "default",
      role: Role.USER,
      assurance: AssuranceLevel.AAL1,
      createdAt: 1,
      lastSeenAt: 1,
      expiresAt: 2,
      absoluteExpiresAt: 3,
      client: "",
      methods: [],
    });
  });

  it("reads an array written before authentication methods were recorded, with none", () => {
    const raw = JSON.stringify([1, "s", "default", Role.USER, AssuranceLevel.AAL1, 1, 1, 2, 3, "sealed"]);
    expect(decodeSession(ACCOUNT, raw).methods).toEqual([]);
    expect(decodeSession(ACCOUNT, raw).client).toBe("sealed");
  });
});

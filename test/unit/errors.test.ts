import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it, vi } from "vitest";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { DomainError, invalidArgument, rateLimited, unauthenticated, type ErrorKind } from "../../src/domain/errors.ts";
import { ERROR_DOMAIN, errorInterceptor, toConnectError } from "../../src/interceptors/errors.ts";
import { translateRedisError } from "../../src/store/redis/errors.ts";
import { translateSqlError } from "../../src/store/sql/errors.ts";

const KINDS: Array<[ErrorKind, Code]> = [
  ["invalid_argument", Code.InvalidArgument],
  ["unauthenticated", Code.Unauthenticated],
  ["permission_denied", Code.PermissionDenied],
  ["not_found", Code.NotFound],
  ["already_exists", Code.AlreadyExists],
  ["failed_precondition", Code.FailedPrecondition],
  ["resource_exhausted", Code.ResourceExhausted],
  ["unavailable", Code.Unavailable],
  ["unimplemented", Code.Unimplemented],
];

describe("toConnectError with domain errors", () => {
  it.each(KINDS)("%s → Code %s, message and ErrorInfo kept", (kind, code) => {
    const onUnexpected = vi.fn();
    const error = toConnectError(new DomainError(kind, "SOME_REASON", "something specific happened"), onUnexpected);
    expect(error).toBeInstanceOf(ConnectError);
    expect(error.code).toBe(code);
    expect(error.rawMessage).toBe("something specific happened");
    const [info, ...more] = error.findDetails(ErrorInfoSchema);
    expect(more).toEqual([]);
    expect(info?.reason).toBe("SOME_REASON");
    expect(info?.domain).toBe(ERROR_DOMAIN);
    expect(error.findDetails(BadRequestSchema)).toEqual([]);
    expect(error.findDetails(RetryInfoSchema)).toEqual([]);
    expect(error.metadata.get("retry-after")).toBeNull();
    expect(onUnexpected).not.toHaveBeenCalled();
  });

  it("covers every kind", () => {
    // If a kind is added to ErrorKind, this list (and the mapping) must follow.
    expect(new Set(KINDS.map(([kind]) => kind)).size).toBe(9);
    expect(new Set(KINDS.map(([, code]) => code)).size).toBe(9);
  });

  it("turns a field violation into a google.rpc.BadRequest detail", () => {
    const error = toConnectError(invalidArgument("new_password", "is too easy to guess", "PASSWORD_WEAK"), vi.fn());
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe("new_password is too easy to guess");
    const [badRequest, ...more] = error.findDetails(BadRequestSchema);
    expect(more).toEqual([]);
    expect(badRequest?.fieldViolations).toHaveLength(1);
    expect(badRequest?.fieldViolations[0]).toMatchObject({
      field: "new_password",
      description: "is too easy to guess",
      reason: "PASSWORD_WEAK",
    });
    expect(error.findDetails(ErrorInfoSchema)[0]?.reason).toBe("PASSWORD_WEAK");
  });

  it("keeps several field violations in order", () => {
    const domain = new DomainError("invalid_argument", "INVALID_ARGUMENT", "two problems", {
      fieldViolations: [
        { field: "email", description: "is required" },
        { field: "locale", description: "is not supported" },
      ],
    });
    const [badRequest] = toConnectError(domain, vi.fn()).findDetails(BadRequestSchema);
    expect(badRequest?.fieldViolations.map((v) => v.field)).toEqual(["email", "locale"]);
  });

  it("resource_exhausted with retryAfterMs 1500 carries RetryInfo 1.5 s and retry-after 2", () => {
    const error = toConnectError(rateLimited(1500), vi.fn());
    expect(error.code).toBe(Code.ResourceExhausted);
    const [retry, ...more] = error.findDetails(RetryInfoSchema);
    expect(more).toEqual([]);
    expect(retry?.retryDelay?.seconds).toBe(1n);
    expect(retry?.retryDelay?.nanos).toBe(500_000_000);
    expect(error.metadata.get("retry-after")).toBe("2");
    expect(error.findDetails(ErrorInfoSchema)[0]?.reason).toBe("RATE_LIMITED");
  });

  it.each([
    [0, 0n, 0, "0"],
    [1000, 1n, 0, "1"],
    [1, 0n, 1_000_000, "1"],
    [59_999.2, 60n, 0, "60"],
  ])("retryAfterMs %s → %ss %sns, retry-after %s", (ms, seconds, nanos, header) => {
    const error = toConnectError(new DomainError("resource_exhausted", "RATE_LIMITED", "slow down", { retryAfterMs: ms }), vi.fn());
    const [retry] = error.findDetails(RetryInfoSchema);
    expect(retry?.retryDelay?.seconds).toBe(seconds);
    expect(retry?.retryDelay?.nanos).toBe(nanos);
    expect(error.metadata.get("retry-after")).toBe(header);
  });

  it("never produces a negative delay", () => {
    const error = toConnectError(new DomainError("resource_exhausted", "RATE_LIMITED", "slow down", { retryAfterMs: -500 }), vi.fn());
    const [retry] = error.findDetails(RetryInfoSchema);
    expect(retry?.retryDelay?.seconds).toBe(0n);
    expect(retry?.retryDelay?.nanos).toBe(0);
    expect(error.metadata.get("retry-after")).toBe("0");
  });
});

describe("toConnectError with unexpected errors", () => {
  it('hides an unknown Error behind Internal "internal error" and reports it', () => {
    const original = new Error("SELECT * FROM accounts WHERE secret='hunter2' failed");
    const onUnexpected = vi.fn();
    const error = toConnectError(original, onUnexpected);
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).toBe("internal error");
    expect(error.message).not.toContain("hunter2");
    expect(error.message).not.toContain("SELECT");
    expect(error.details).toEqual([]);
    expect(error.cause).toBeUndefined();
    expect(onUnexpected).toHaveBeenCalledTimes(1);
    expect(onUnexpected).toHaveBeenCalledWith(original);
  });

  it.each([
    ["a string", "boom"],
    ["null", null],
    ["undefined", undefined],
    ["a plain object", { message: "raw object" }],
  ])("handles %s thrown", (_name, thrown) => {
    const onUnexpected = vi.fn();
    const error = toConnectError(thrown, onUnexpected);
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).toBe("internal error");
    expect(onUnexpected).toHaveBeenCalledWith(thrown);
  });

  // Driver errors reach the edge as their adapter translated them (src/store/*/errors.ts).
  it.each(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "PROTOCOL_CONNECTION_LOST", "EPIPE"])("%s becomes Unavailable", (code) => {
    const original = Object.assign(new Error(`connect ${code} 10.0.0.5:3306`), { code });
    const onUnexpected = vi.fn();
    const error = toConnectError(translateSqlError(original), onUnexpected);
    expect(error.code).toBe(Code.Unavailable);
    expect(error.message).not.toContain("10.0.0.5");
    expect(onUnexpected).toHaveBeenCalledWith(original);
  });

  it.each(["Connection is closed.", "Reached the max retries per request limit (which is 20)."])("Redis client error %j becomes Unavailable", (message) => {
    expect(toConnectError(translateRedisError(new Error(message)), vi.fn()).code).toBe(Code.Unavailable);
  });

  it.each([
    ["mysql2 query timeout", translateSqlError(Object.assign(new Error("Query inactivity timeout"), { code: "PROTOCOL_SEQUENCE_TIMEOUT" }))],
    ["mysql2 connect timeout", translateSqlError(Object.assign(new Error("connect ETIMEDOUT"), { code: "ETIMEDOUT" }))],
    ["ioredis command timeout", translateRedisError(new Error("Command timed out"))],
    ["ioredis socket timeout", translateRedisError(new Error("Socket timeout. Expecting data, but didn't receive any in 2000ms."))],
  ])("a backend that does not answer in time (%s) is Unavailable with a retry hint, never Internal", (_name, original) => {
    const error = toConnectError(original, vi.fn());
    expect(error.code).toBe(Code.Unavailable);
    const retry = error.findDetails(RetryInfoSchema)[0];
    expect(Number(retry?.retryDelay?.seconds ?? 0) * 1000 + (retry?.retryDelay?.nanos ?? 0) / 1e6).toBeGreaterThan(0);
    expect(error.findDetails(ErrorInfoSchema)[0]?.reason).toBe("BACKEND_UNAVAILABLE");
    expect(error.metadata.get("retry-after")).toBe("1");
  });

  it("passes framework ConnectErrors through untouched", () => {
    const onUnexpected = vi.fn();
    const original = new ConnectError("bad JSON", Code.InvalidArgument);
    expect(toConnectError(original, onUnexpected)).toBe(original);
    const notFound = new ConnectError("unknown method", Code.Unimplemented);
    expect(toConnectError(notFound, onUnexpected)).toBe(notFound);
    expect(onUnexpected).not.toHaveBeenCalled();
  });

  it("treats Internal/Unknown ConnectErrors as unexpected and hides their message", () => {
    for (const code of [Code.Internal, Code.Unknown]) {
      const onUnexpected = vi.fn();
      const error = toConnectError(new ConnectError("stack trace with secrets", code), onUnexpected);
      expect(error.code).toBe(Code.Internal);
      expect(error.rawMessage).toBe("internal error");
      expect(onUnexpected).toHaveBeenCalledTimes(1);
    }
  });
});

describe("errorInterceptor", () => {
  // Only the fields the interceptor reads.
  const request = { method: { name: "SignIn", parent: { typeName: "identity.v1.IdentityService" } } };
  type Next = Parameters<ReturnType<typeof errorInterceptor>>[0];
  type Req = Parameters<Next>[0];

  it("maps a thrown error and reports the procedure", async () => {
    const onUnexpected = vi.fn();
    const next = (async () => {
      throw new Error("db exploded");
    }) as unknown as Next;
    const handler = errorInterceptor(onUnexpected)(next);
    const error = await handler(request as unknown as Req).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Internal);
    expect(onUnexpected).toHaveBeenCalledWith(expect.any(Error), "identity.v1.IdentityService/SignIn");
  });

  it("maps domain errors without reporting them", async () => {
    const onUnexpected = vi.fn();
    const next = (async () => {
      throw unauthenticated("SESSION_INVALID", "session is invalid or expired");
    }) as unknown as Next;
    const error = await errorInterceptor(onUnexpected)(next)(request as unknown as Req).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as ConnectError).code).toBe(Code.Unauthenticated);
    expect(onUnexpected).not.toHaveBeenCalled();
  });

  it("maps errors thrown while streaming", async () => {
    const onUnexpected = vi.fn();
    async function* messages() {
      yield 1;
      throw rateLimited(1500);
    }
    const next = (async () => ({ stream: true, message: messages() })) as unknown as Next;
    const res = (await errorInterceptor(onUnexpected)(next)(request as unknown as Req)) as unknown as {
      message: AsyncIterable<number>;
    };
    const seen: number[] = [];
    const error = await (async () => {
      for await (const m of res.message) seen.push(m);
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(seen).toEqual([1]);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.ResourceExhausted);
    expect((error as ConnectError).metadata.get("retry-after")).toBe("2");
  });
});

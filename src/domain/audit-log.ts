// The audit trail's port, as the rest of the domain uses it. Every admin action
// and every admin read of another person's data appends an event; the log is
// append-only and hash-chained (each event commits to the previous one).

export interface AuditEventInput {
  tenantId: string;
  /** "account:<id>", "api_key:<id>", "system" or "anonymous" (see actorOf). */
  actor: string;
  /** What was done, dotted lower case: "user.get", "user.deactivate", "session.sign_in_failed". */
  action: string;
  /** Whom it was done to: "account:<id>", "tenant:<id>", "api_key:<id>", or "". */
  target: string;
  /** The reason the actor stated, or "". */
  reason: string;
  ip: string;
  userAgent: string;
  /** "success", or the error reason (e.g. "PERMISSION_DENIED"). */
  outcome: string;
}

export interface AuditEvent extends AuditEventInput {
  sequence: number;
  at: number;
  /** The previous event's hash (64 zeros for a chain's first event). */
  prevHash: string;
  /** Hex SHA-256 over the previous event's hash and this event's fields. */
  hash: string;
}

export interface AuditLog {
  /** Appends an event; resolves once it is durable. Concurrent appends keep one unbroken chain. */
  record(event: AuditEventInput): Promise<AuditEvent>;
}

// One server span per RPC, when tracing is on (src/server/tracing.ts): the
// child of the caller's W3C traceparent (gRPC and Connect carry it as a
// header), named by the procedure, with the final code and the tenant. The
// request and response are never attributes. Not in the stack when tracing is off.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type TextMapGetter, type Tracer } from "@opentelemetry/api";
import { callerKey } from "../services/call-context.ts";
import { procedureName } from "./metrics.ts";

const fromHeaders: TextMapGetter<Headers> = {
  keys: (headers) => [...headers.keys()],
  get: (headers, key) => headers.get(key) ?? undefined,
};

/** "InvalidArgument" → "invalid_argument", Connect's name for a code on the wire. */
function codeName(code: Code): string {
  return Code[code]!.replace(/[A-Z]/g, (c, i: number) => (i === 0 ? "" : "_") + c.toLowerCase());
}

/** A tenant id as the caller named it, if it looks like one (the header is the client's to fill). */
function tenantOf(header: string | null): string | undefined {
  return header !== null && /^[A-Za-z0-9_-]{1,64}$/.test(header) ? header : undefined;
}

export function tracingInterceptor(tracer: Tracer): Interceptor {
  return (next) => async (req) => {
    const parent = propagation.extract(ROOT_CONTEXT, req.header, fromHeaders);
    const span = tracer.startSpan(
      procedureName(req.method),
      { kind: SpanKind.SERVER, attributes: { "rpc.system": "connect_rpc", "rpc.service": req.method.parent.typeName, "rpc.method": req.method.name } },
      parent,
    );
    let code = Code.Unknown;
    let failed = true;
    try {
      const res = await context.with(trace.setSpan(parent, span), () => next(req));
      failed = false;
      return res;
    } catch (error) {
      code = error instanceof ConnectError ? error.code : Code.Unknown;
      throw error;
    } finally {
      if (failed) {
        span.setAttribute("rpc.connect_rpc.error_code", codeName(code));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.setAttribute("identity.code", failed ? codeName(code) : "ok");
      // The tenant named by the call, else the authenticated caller's own.
      const caller = req.contextValues.get(callerKey);
      const tenant = tenantOf(req.header.get("x-tenant-id")) ?? (caller.kind === "anonymous" ? undefined : caller.principal.tenantId);
      if (tenant !== undefined) span.setAttribute("identity.tenant_id", tenant);
      span.end();
    }
  };
}

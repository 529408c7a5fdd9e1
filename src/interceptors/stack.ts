// The interceptors around every connect-node call, outermost first, in one
// list so the server (src/server/http.ts) and the in-memory test tier
// (test/service/) run the same stack.
import type { ConnectRouterOptions, Interceptor } from "@connectrpc/connect";
import { accessOf } from "../services/routes.ts";
import { authenticationInterceptor, type Authenticators } from "./authentication.ts";
import { clientFaultInterceptor, requestGate } from "./client-faults.ts";
import { errorInterceptor, logUnexpected } from "./errors.ts";
import type { Metrics } from "./metrics.ts";
import { tracingInterceptor } from "./tracing.ts";
import type { Tracer } from "@opentelemetry/api";

export function routerOptions(deps: {
  app: Authenticators;
  metrics: Metrics;
  log: { error(fields: object, message: string): void };
  tracer?: Tracer;
}): Pick<ConnectRouterOptions, "interceptors" | "requestGate"> {
  const interceptors: Interceptor[] = [
    // Only when tracing is on; outermost, so the span sees the final code.
    ...(deps.tracer ? [tracingInterceptor(deps.tracer)] : []),
    // Reading the request is the client's fault (a unary body was parsed before any of these ran).
    clientFaultInterceptor,
    // Metrics see the mapped error.
    deps.metrics.interceptor,
    errorInterceptor(logUnexpected(deps.log)),
    // Its refusals are mapped like a handler's.
    authenticationInterceptor(deps.app, accessOf),
  ];
  return { interceptors, requestGate };
}

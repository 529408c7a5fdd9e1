// An unreadable request is the client's fault: InvalidArgument on every protocol,
// never Internal and never logged as unexpected. connect-es parses a unary body
// before any interceptor, so a gate listens on the call's abort signal; streaming
// bodies are read inside the interceptor below. bad-input.test.ts pins both.
import { Code, ConnectError, createContextKey, type HandlerContext, type Interceptor } from "@connectrpc/connect";

const handlerReached = createContextKey(false, { description: "the call got past parsing into the interceptors" });

/** The request gate: arms the rewrite for this call. */
export function requestGate(context: HandlerContext): void {
  const { signal } = context;
  signal.addEventListener(
    "abort",
    () => {
      const reason: unknown = signal.reason;
      if (reason instanceof ConnectError && reason.code === Code.Internal && !context.values.get(handlerReached)) {
        (reason as { code: Code }).code = Code.InvalidArgument;
      }
    },
    { once: true },
  );
}

/** The outermost interceptor: marks a unary call as parsed (later errors keep their own code); reads a stream's messages as the client's. */
export const clientFaultInterceptor: Interceptor = (next) => (req) => {
  req.contextValues.set(handlerReached, true);
  if (req.stream) return next({ ...req, message: readAsClientFault(req.message) });
  return next(req);
};

async function* readAsClientFault<T>(messages: AsyncIterable<T>): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (error) {
    if (error instanceof ConnectError && error.code === Code.Internal)
      throw new ConnectError(error.rawMessage, Code.InvalidArgument, undefined, undefined, error);
    throw error;
  }
}

// A request body the framework cannot read is the client's fault: InvalidArgument,
// on every protocol. connect-es parses request messages before any interceptor
// runs and reports an undecodable protobuf binary body (and undecodable
// compressed bytes) as Internal, while it reports bad JSON as InvalidArgument
// and the gRPC fast path answers InvalidArgument — the paths disagreed.
//
// A unary request is parsed before the interceptors, and no hook sees that
// error before it is encoded, except the call's abort signal: every protocol
// handler of connect-es (2.2, pinned) aborts the handler context with the
// error before writing it. So a request gate (run before the body is read)
// listens on that signal, and an Internal error raised before the
// interceptors were reached — nothing of ours ran, so it can only come from
// reading the request — is turned into InvalidArgument in place.
// A streaming request is parsed as the handler reads it, inside the
// interceptors: the interceptor below answers an Internal error raised while
// reading the request's messages as InvalidArgument (and so it is not logged
// as unexpected). test/integration/bad-input.test.ts proves both on each
// protocol (and would catch a framework upgrade that changes the order).
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
    if (error instanceof ConnectError && error.code === Code.Internal) throw new ConnectError(error.rawMessage, Code.InvalidArgument, undefined, undefined, error);
    throw error;
  }
}

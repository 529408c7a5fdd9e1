// Clients for the three wire protocols, behind one small call shape so a test
// can drive the same path over each: @grpc/grpc-js (gRPC over h2c, a peer
// nobody here wrote), Connect JSON over HTTP/1.1, and gRPC-Web.
import { create, fromBinary, toBinary, type DescMessage, type DescMethodUnary, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { type Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { AnySchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";

export type Protocol = "grpc-js" | "connect-json-h1" | "grpc-web";
export const PROTOCOLS: Protocol[] = ["grpc-js", "connect-json-h1", "grpc-web"];

export interface Caller {
  call<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    input: MessageInitShape<I>,
    headers?: Record<string, string>,
  ): Promise<MessageShape<O>>;
  close(): void;
}

/** `userAgent` stands for a device: grpc-js puts it in front of its own user agent, the others send it as is. */
export function createCaller(protocol: Protocol, baseUrl: string, options: { userAgent?: string } = {}): Caller {
  if (protocol === "grpc-js") return grpcJsCaller(baseUrl, options.userAgent);
  const transport =
    protocol === "grpc-web"
      ? createGrpcWebTransport({ baseUrl, httpVersion: "1.1" })
      : createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false });
  return {
    async call(method, input, headers) {
      const client = createClient(method.parent, transport) as unknown as Record<string, (i: unknown, o: unknown) => Promise<never>>;
      return client[method.localName]!(input, { headers: options.userAgent ? { "user-agent": options.userAgent, ...headers } : headers });
    },
    close() {},
  };
}

function grpcJsCaller(baseUrl: string, userAgent?: string): Caller {
  const client = new grpc.Client(new URL(baseUrl).host, grpc.credentials.createInsecure(), userAgent ? { "grpc.primary_user_agent": userAgent } : {});
  return {
    call(method, input, headers = {}) {
      const metadata = new grpc.Metadata();
      for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
      return new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          `/${method.parent.typeName}/${method.name}`,
          (message: MessageInitShape<typeof method.input>) => Buffer.from(toBinary(method.input, create(method.input, message))),
          (bytes: Buffer) => fromBinary(method.output, bytes),
          input,
          metadata,
          (error, response) => {
            if (error) reject(new ConnectError(error.details, error.code as unknown as Code, undefined, undefined, error));
            else resolve(response!);
          },
        );
      });
    },
    close: () => client.close(),
  };
}

/** The error of a call that must be refused (throws if the call succeeded), with its details over every protocol. */
export async function refusal(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (error) {
    return withDetails(ConnectError.from(error));
  }
  throw new Error("expected the call to be refused");
}

/** grpc-js leaves the error details in grpc-status-details-bin (a google.rpc.Status): read them there. */
export function withDetails(error: ConnectError): ConnectError {
  const metadata = (error.cause as { metadata?: { get(key: string): unknown[] } } | undefined)?.metadata;
  const [bin] = metadata?.get("grpc-status-details-bin") ?? [];
  if (error.details.length > 0 || !(bin instanceof Uint8Array)) return error;
  const details: Array<{ type: string; value: Uint8Array }> = [];
  const reader = new BinaryReader(bin);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field !== 3) {
      reader.skip(wireType);
      continue;
    }
    const any = fromBinary(AnySchema, reader.bytes());
    details.push({ type: any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1), value: any.value });
  }
  const detailed = new ConnectError(error.rawMessage, error.code, undefined, undefined, error.cause);
  detailed.details.push(...details);
  return detailed;
}

/** The Connect code of a refused call (throws if the call succeeded). */
export async function codeOf(promise: Promise<unknown>): Promise<Code> {
  return (await refusal(promise)).code;
}

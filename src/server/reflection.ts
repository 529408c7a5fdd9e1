// gRPC server reflection (grpc.reflection.v1 and v1alpha) for connect-node,
// so grpcurl, buf curl and Postman can discover the API without .proto files.
import { toBinary, type DescExtension, type DescFile } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { nestedTypes } from "@bufbuild/protobuf/reflect";
import type { ConnectRouter } from "@connectrpc/connect";
import { file_google_rpc_error_details } from "../../gen/google/rpc/error_details_pb.js";
import { file_grpc_health_v1_health } from "../../gen/grpc/health/v1/health_pb.js";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

// grpc status code carried inside error_response (the stream itself stays OK).
const INVALID_ARGUMENT = 3;
const NOT_FOUND = 5;

// v1 and v1alpha are wire- and shape-identical; this init shape fits both.
type MessageResponse =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

export function registerReflection(router: ConnectRouter, files: readonly DescFile[]): void {
  const served = [
    ...files,
    file_grpc_health_v1_health,
    v1.file_grpc_reflection_v1_reflection,
    v1alpha.file_grpc_reflection_v1alpha_reflection,
    // The details every error may carry (ErrorInfo, BadRequest, RetryInfo…): with
    // them, grpcurl and buf curl print ErrorInfo.reason instead of base64.
    file_google_rpc_error_details,
  ];
  // Only services from served files are listed: a service merely present in
  // an imported file is not necessarily routed by this server.
  const serviceNames = [...new Set(served.flatMap((f) => f.services.map((s) => s.typeName)))];

  // Everything below is computed once; requests are only map lookups.
  const byName = new Map<string, DescFile>();
  const visit = (f: DescFile): void => {
    if (byName.has(f.proto.name)) return;
    byName.set(f.proto.name, f);
    f.dependencies.forEach(visit);
  };
  served.forEach(visit);

  const bySymbol = new Map<string, DescFile>();
  const messages = new Set<string>();
  const extensions: DescExtension[] = [];
  for (const file of byName.values()) {
    for (const t of nestedTypes(file)) {
      bySymbol.set(t.typeName, file);
      switch (t.kind) {
        case "service":
          t.methods.forEach((m) => bySymbol.set(`${t.typeName}.${m.name}`, file));
          break;
        case "message":
          messages.add(t.typeName);
          t.fields.forEach((f) => bySymbol.set(`${t.typeName}.${f.name}`, file));
          t.oneofs.forEach((o) => bySymbol.set(`${t.typeName}.${o.name}`, file));
          break;
        case "enum": {
          // Enum values are scoped as siblings of their enum (C++ scoping rules).
          const scope = t.typeName.slice(0, t.typeName.lastIndexOf(".") + 1);
          t.values.forEach((v) => bySymbol.set(scope + v.name, file));
          break;
        }
        case "extension":
          extensions.push(t);
          break;
      }
    }
  }

  // Clients such as grpcurl resolve a file only once all its imports are
  // known, so every answer carries the transitive closure, requested file first.
  const closure = new Map<DescFile, Uint8Array[]>();
  const bytes = new Map([...byName.values()].map((f) => [f, toBinary(FileDescriptorProtoSchema, f.proto)]));
  for (const file of byName.values()) {
    const seen = new Set<DescFile>();
    const walk = (f: DescFile): void => {
      if (seen.has(f)) return;
      seen.add(f);
      f.dependencies.forEach(walk);
    };
    walk(file);
    closure.set(
      file,
      [...seen].map((f) => bytes.get(f)!),
    );
  }

  const notFound = (what: string): MessageResponse => ({
    case: "errorResponse",
    value: { errorCode: NOT_FOUND, errorMessage: `${what} not found` },
  });
  const fileResponse = (file: DescFile | undefined, what: string): MessageResponse =>
    file ? { case: "fileDescriptorResponse", value: { fileDescriptorProto: closure.get(file)! } } : notFound(what);

  const answer = (req: v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest): MessageResponse => {
    const r = req.messageRequest;
    switch (r.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: serviceNames.map((name) => ({ name })) } };
      case "fileByFilename":
        return fileResponse(byName.get(r.value), `file ${r.value}`);
      case "fileContainingSymbol":
        return fileResponse(bySymbol.get(r.value), `symbol ${r.value}`);
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = r.value;
        const ext = extensions.find((e) => e.extendee.typeName === containingType && e.number === extensionNumber);
        return fileResponse(ext?.file, `extension ${containingType}(${extensionNumber})`);
      }
      case "allExtensionNumbersOfType": {
        // A known message without extensions gets an empty list, an unknown one NOT_FOUND.
        if (!messages.has(r.value)) return notFound(`type ${r.value}`);
        const numbers = extensions.filter((e) => e.extendee.typeName === r.value).map((e) => e.number);
        return { case: "allExtensionNumbersResponse", value: { baseTypeName: r.value, extensionNumber: numbers } };
      }
      default:
        return { case: "errorResponse", value: { errorCode: INVALID_ARGUMENT, errorMessage: "empty reflection request" } };
    }
  };

  // Two registrations because each version has its own generated message types.
  router.service(v1.ServerReflection, {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) {
        yield { validHost: req.host, originalRequest: req, messageResponse: answer(req) };
      }
    },
  });
  router.service(v1alpha.ServerReflection, {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) {
        yield { validHost: req.host, originalRequest: req, messageResponse: answer(req) };
      }
    },
  });
}
